"""Structured output and the LLM judge against a real vLLM server (CPU build, tiny random-weight model).

The server is started once per test session (tests/conftest.py) and stopped by its pid.  The model's
text is noise, so these tests check plumbing only: the JSON schema reaches the server and constrains
the reply (vLLM enforces ``response_format``), and the grade that comes back is honest either way: an
LLM grade whose every verdict rests on a span of the answer, or the offline grade with a notice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.bank.corpus import load_corpus
from coach.grader import MISSING, Grader, evidence_in
from coach.llm import OpenAIChatLLM, json_schema_format, parse_json_reply

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
TINY_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["verdict"],
               "properties": {"verdict": {"type": "string", "enum": ["covered", "missing"]}}}


def test_json_schema_constrains_the_reply(vllm_server):
    base_url, model = vllm_server
    llm = OpenAIChatLLM(base_url, model, timeout=60, max_tokens=48, temperature=0.7)
    messages = [{"role": "user", "content": "Answer with a verdict."}]
    for _ in range(3):  # a random model, constrained: every reply is the schema's JSON
        data = parse_json_reply(llm.chat(messages, response_format=json_schema_format("tiny", TINY_SCHEMA)))
        assert set(data) == {"verdict"} and data["verdict"] in ("covered", "missing"), data


def test_llm_judge_end_to_end_is_honest(vllm_server):
    base_url, model = vllm_server
    section = {s.id: s for s in load_corpus(ROOT / "corpus")}["Q13"]
    answer = "推理时把历史 token 的 K/V 缓存起来，新 token 只和缓存交互，减少重复计算。"
    llm = OpenAIChatLLM(base_url, model, timeout=120, max_tokens=256, temperature=0.7)
    grade = Grader(None, llm=llm).grade(section, answer)
    assert len(grade.points) == 3
    if grade.judge == f"llm:{model}":
        for v in grade.points:  # whatever the noise said, a verdict stands only on a span of the answer
            assert v.verdict == MISSING or evidence_in(v.evidence, answer), v
    else:  # cut at max_tokens or otherwise unusable: the offline grade, said so
        assert grade.judge == "offline"
        assert any("LLM judge unavailable" in n for n in grade.notes), grade.notes
    json.dumps([v.__dict__ for v in grade.points], ensure_ascii=False)  # plain data all the way
