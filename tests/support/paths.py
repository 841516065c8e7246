"""Where the test data is, and the key prefix that keeps this run's keys apart from another's."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
PSTACK = DATA / "pstack"
TEST_DB = 14          # our own database on a shared server
KEY_PREFIX = f"pstest{os.getpid()}:"  # our own keys, even beside another test run


def _shared_data() -> Path:
    """The project's shared data (pstack's tests, the POETS corpus): beside the clone, as CI lays
    it out, else the workplace's copy; ``PSTACK_SHARED_DATA`` overrides both."""
    if os.environ.get("PSTACK_SHARED_DATA"):
        return Path(os.environ["PSTACK_SHARED_DATA"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


SHARED_DATA = _shared_data()
CORPUS = SHARED_DATA / "poets-corpus"
