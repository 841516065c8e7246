#!/usr/bin/env bash
# Command two of the README: set up, check (ruff, mypy), run the tests.  Arguments go to
# pytest: `bash scripts/test.sh -m "not fleet"` is the fast tier (no Redis, no workers);
# PSTACK_SKIP_CHECKS=1 skips ruff and mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${PSTACK_SKIP_CHECKS:-}" ]; then
    echo "checks: ruff" >&2
    .venv/bin/ruff check --quiet .
    echo "checks: mypy (strict)" >&2
    .venv/bin/mypy
fi
# The tests start their own redis-server on a free port and stop it (tests/conftest.py), so
# nothing on this machine is touched and two checkouts can test at once.
.venv/bin/python -m pytest "$@"
# The fleet's smoke test: every application in apps/ on the embedded stack (docs/testing.md).
PSTACK_REDIS_URL= exec .venv/bin/pstack test apps/
