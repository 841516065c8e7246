#!/bin/sh
# The supervisor of one pstack worker service, written by `pstack deploy` where systemd does not run
# (docs/deployment.md): it runs the worker, restarts it 2 s after it exits, and on SIGTERM stops it
# (a warm shutdown) and ends.  Started with setsid: its process group is the service.
dir='@DIR@'
service='@SERVICE@'
echo $$ > "$dir/$service.pid"
set -a
. "$dir/env"
set +a
child=
stop() {
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
    rm -f "$dir/$service.pid" "$dir/$service.worker.pid"
    exit 0
}
trap stop TERM INT
while :; do
    "$dir/venv/bin/pstack" worker @ARGS@ &
    child=$!
    echo "$child" > "$dir/$service.worker.pid"
    wait "$child"
    echo "supervise: $service exited with status $?; restarting in 2 s" >&2
    child=
    sleep 2
done
