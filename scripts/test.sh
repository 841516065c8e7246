#!/usr/bin/env bash
# Command two of the README: set up, check (ruff, mypy), start a local redis-server if none
# answers, run the tests.  Arguments go to pytest: `bash scripts/test.sh -m "not fleet"` is the
# fast tier (no Redis, no workers); PSTACK_SKIP_CHECKS=1 skips ruff and mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${PSTACK_SKIP_CHECKS:-}" ]; then
    echo "checks: ruff" >&2
    .venv/bin/ruff check --quiet .
    echo "checks: mypy (strict)" >&2
    .venv/bin/mypy
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    redis-server --daemonize yes --port 6379 --save '' --appendonly no >/dev/null
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
fi
exec .venv/bin/python -m pytest "$@"
