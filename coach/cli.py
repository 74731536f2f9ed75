"""Command line: ask the coach, or (re)build the index.

    python -m coach ask "KV Cache 的原理是什么？" [--history "earlier turn" ...] [--k 5] [--json]
    python -m coach build-index [--rebuild]
    python -m coach export-anki --person ana [--out ana-weak.apkg] [--below 80]

Exit codes: 0 answered, related material shown, or declined; 2 bad input or setup (message on stderr, no
traceback).  ``--json`` carries ``"outcome"`` ("answer" | "related" | "decline", coach.types.OUTCOMES).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .bank.corpus import CorpusError
from .embedders import EmbedderError
from .logs import configure_logging
from .settings import Settings
from .text import QueryError


def _overlap_report(retriever, corpus_dir) -> str:
    """The off-topic reference questions a bank may answer after all (coach.bank.offtopic.overlapping_references)."""
    from .bank.offtopic import OVERLAP_COSINE, load_offtopic, overlapping_references, reference_questions

    sections = list(retriever.index.sections.values())
    reference = reference_questions(load_offtopic(corpus_dir), sections)
    titles = [s.title for s in sections]
    hits = overlapping_references(reference, retriever.index.offtopic, titles,
                                  retriever.embedder.embed(titles, query=True))
    if not hits:
        return f"off-topic reference: none of its {len(reference)} questions is close to a section title"
    lines = [f"off-topic reference: {len(hits)} of {len(reference)} questions are close to a section title "
             f"(cosine >= {OVERLAP_COSINE}). If your banks answer them, delete them from the *off_topic*.jsonl "
             "files and rerun `python -m eval.calibrate`, or questions on them will tend to be declined:"]
    lines += [f"  {cos:.3f}  {q}  ~  {t}" for q, t, cos in hits[:20]]
    if len(hits) > 20:
        lines.append(f"  ... and {len(hits) - 20} more")
    return "\n".join(lines)


def _export_anki(settings, args) -> int:
    import re

    from .anki import export_weak_deck
    from .bank.corpus import load_corpus
    from .state import ProgressError, open_progress

    progress, problem = open_progress(settings.progress_url, settings.data_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    sections = {s.id: s for s in load_corpus(settings.corpus_dir)}
    safe = re.sub(r"[^\w.-]+", "_", args.person)
    out = args.out or f"interview-coach-{safe}-weak.apkg"
    try:
        written = export_weak_deck(progress, args.person, sections, out, below=args.below)
        n = len(progress.weak(args.person, args.below))
    except ProgressError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if written is None:
        known = "" if progress.schedule(args.person) else " (no progress recorded for this person)"
        print(f"nothing to export: {args.person} has no question with a last score under {args.below:g}{known}")
        return 0
    print(f"wrote {written}: {n} weak question(s) of {args.person} with reference answers (import it in Anki)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coach", description="Interview Coach")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--history", action="append", default=[], help="an earlier user turn (repeatable, oldest first)")
    ask.add_argument("--k", type=int, default=None, help="how many sections to retrieve")
    ask.add_argument("--json", action="store_true", help="print JSON")
    build = sub.add_parser("build-index", help="build the index in index/ (only if stale, unless --rebuild)")
    build.add_argument("--rebuild", action="store_true")
    export = sub.add_parser("export-anki", help="a person's weak questions with reference answers as an Anki deck")
    export.add_argument("--person", default="local", help='whose progress (default "local"; Slack users: slack:U…)')
    export.add_argument("--out", default=None, help="the .apkg file to write (default interview-coach-PERSON-weak.apkg)")
    export.add_argument("--below", type=float, default=80.0, help="weak = last score under this (default 80)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    try:
        settings = Settings.from_env()
        from .bank.glossary import load_glossary, unmatched_groups
        from .pipeline import build_coach, build_retriever

        if args.cmd == "export-anki":
            return _export_anki(settings, args)
        if args.cmd == "build-index":
            retriever, status = build_retriever(settings, rebuild=args.rebuild)
            print("\n".join(status))
            glossary = load_glossary(settings.corpus_dir)
            dead = unmatched_groups(glossary, [s.title + "\n" + s.body for s in retriever.index.sections.values()])
            print(f"glossary: {len(glossary.groups)} groups; {len(dead)} match nothing in the banks"
                  + (f" (check their spelling): {'; '.join(g[0] for g in dead)}" if dead else ""))
            print(_overlap_report(retriever, settings.corpus_dir))
            return 0
        coach, status = build_coach(settings)
        answer = coach.ask(args.question, args.history, k=args.k)
    except (QueryError, CorpusError, EmbedderError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "query": answer.question, "rewritten_query": answer.rewritten_query, "outcome": answer.outcome,
            "declined": answer.declined, "decline_reason": answer.decline_reason, "coverage": answer.coverage,
            "hits": [{"id": h.id, "title": h.title, "score": round(h.score, 6)} for h in answer.hits],
            "mode": answer.mode, "rerank": answer.rerank_state, "answer": answer.text,
            "citations": [{"id": c.id, "title": c.title} for c in answer.citations],
            "suggestions": list(answer.suggestions), "categories": list(answer.categories),
            "notices": list(answer.notices),
            "timings_ms": answer.timings_ms,
        }, ensure_ascii=False, indent=2))
        return 0
    if args.verbose:
        print("\n".join(f"# {line}" for line in status))
    for n in answer.notices:
        print(f"[notice] {n}")
    print(answer.text)
    if answer.outcome == "related":
        print("\nrelated material (not an answer): " + ", ".join(f"{c.id} {c.title}" for c in answer.citations))
    if not answer.declined:
        print("\nretrieved: " + ", ".join(f"{h.id} {h.title} ({h.score:.3f})" for h in answer.hits))
    print(f"mode: {answer.mode} · rerank: {answer.rerank_state}")
    return 0
