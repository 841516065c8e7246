#!/usr/bin/env bash
# Command one of the README: set up, then simulate the ring oscillator on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/psim "$@" tests/data/pstack/ring-oscillator-01.xml
