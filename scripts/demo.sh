#!/usr/bin/env bash
# Command one of the README: set up, then run pstack's ring oscillator as a 3-region process.
# With PSTACK_REDIS_URL unset (the default) `pstack run` starts a private redis-server and local
# Celery workers, runs the process through them, prints the result and stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pstack run "$@" --rmap '{"n1": 1, "n2": 2}' tests/data/pstack/ring-oscillator-01.xml
