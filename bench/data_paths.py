"""Where the benchmarks find the shared data (the POETS corpus, the big bench instances): beside the
repository in ``../shared/data``, else at ``/work/shared/data``."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
CORPUS = DATA / "poets-corpus"
BIG_GALS = DATA / "bench" / "gals_heat_fix_300_1500.xml.gz"
