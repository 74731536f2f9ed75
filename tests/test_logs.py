"""coach.logs: the entry points' log keeps faiss's build probing out, and still shows our INFO lines."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import logging
from coach.logs import configure_logging
configure_logging(logging.INFO)
import faiss
logging.getLogger("coach.indexing.index").info("index loaded")
"""


def test_faiss_probing_stays_out_of_the_default_log():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Could not load library" not in proc.stderr and "AVX" not in proc.stderr, proc.stderr
    assert "INFO index loaded" in proc.stderr  # the coach's own INFO lines still show
