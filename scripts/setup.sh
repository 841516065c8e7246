#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks and makes .venv with pstack-celery in it.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v socat >/dev/null || need+=(socat)
command -v g++ >/dev/null || need+=(g++)
command -v dot >/dev/null || need+=(graphviz)   # pstack draw / draw(): graphviz lays out the pictures
command -v tmux >/dev/null || need+=(tmux)   # the tests drive pcli and top in a real terminal
[ -f /usr/include/expat.h ] || need+=(libexpat1-dev)   # the native instance loader (pstack_tasks/native/instance_loader.cpp)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)   # ... reading .xml.gz applications itself (without: the Python loader does)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)   # tests/test_deploy.py: two sshd "hosts" on loopback
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import pstack_tasks, pytest, pytest_timeout' 2>/dev/null \
   || [ setup.cfg -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true   # an old pip still installs
    # every extra (shell, flower) and the test tools; pip's output only if it fails (an editable
    # install always prints setuptools' "Editable installation" notice)
    if ! log=$(.venv/bin/pip install -q -e '.[test]' 2>&1); then
        echo "$log" >&2
        exit 1
    fi
    touch .venv/.installed
fi
# the package's bytecode, written once: an editable install writes none, and where
# PYTHONDONTWRITEBYTECODE is set every psim start compiled ~50 modules again (0.19 s)
.venv/bin/python -m compileall -q pstack_tasks >/dev/null 2>&1 || true
