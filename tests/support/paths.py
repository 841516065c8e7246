"""Where the test data is, and the key prefix that keeps this run's keys apart from another's."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
PSTACK = DATA / "pstack"
TEST_DB = 14          # our own database on a shared server
KEY_PREFIX = f"pstest{os.getpid()}:"  # our own keys, even beside another test run
