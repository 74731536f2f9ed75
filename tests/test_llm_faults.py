"""The real OpenAIChatLLM and Coach against a stub OpenAI-compatible server on 127.0.0.1.

The stub (http.server in a thread) plays one scripted behaviour per test: a good
answer, a closed port, a server slower than the timeout, a stream cut mid-way
(chunked body never finished, or closed without a finish_reason), a 404 for a
wrong model name, and malformed JSON.  Only the HTTP edge is faked: the openai
client, OpenAIChatLLM's error translation and the Coach's fallbacks all run for real.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coach.answering.answer import Coach
from coach.answering.citations import parse_citations
from coach.llm import FakeLLM, LLMBadResponse, LLMConfigError, LLMUnavailable, OpenAIChatLLM
from coach.pipeline import build_retriever
from coach.settings import Settings
from coach.types import Answer
from tests.test_answer import BANK, KV_FOLLOWUP, KV_QUESTION

MODEL = "stub-model"


def _chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def _completion(content: str) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": MODEL,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}, ensure_ascii=False).encode()


class Stub:
    """What the server does next; set ``behaviour`` per test. Requests are recorded in ``requests``."""

    def __init__(self):
        self.behaviour = "answer"
        self.words = ["推理时缓存", " K/V", " [Q1]", "，", "另见", " [Q99]", "。"]
        self.requests: list[dict] = []
        self.stop = threading.Event()


def make_handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            stub.requests.append(body)
            stream = bool(body.get("stream"))
            b = stub.behaviour
            if b == "slow":
                stub.stop.wait(3.0)
                b = "answer"
            if b == "404":
                msg = json.dumps({"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                                  "type": "NotFoundError", "param": None, "code": 404}).encode()
                return self._send(404, "application/json", msg)
            if b == "malformed":
                if stream:
                    return self._sse([b'data: {"id": "c1", "choices": [{"delta": {"content": "KV\n\n'], end=True)
                return self._send(200, "application/json", b'{"id": "c1", "choices": [{"message": ')
            if not stream:
                return self._send(200, "application/json", _completion("".join(stub.words)))
            chunks = [_chunk(w) for w in stub.words]
            if b == "answer":
                return self._sse(chunks + [_chunk(None, "stop"), b"data: [DONE]\n\n"], end=True)
            if b == "drop":  # a few chunks, then the socket closes inside the chunked body
                return self._sse(chunks[:3], end=False)
            if b == "drop_clean":  # the body ends cleanly, but without finish_reason or [DONE]
                return self._sse(chunks[:3], end=True)
            if b == "trickle":  # one piece every 0.3 s, never finishing: each read is quick, the answer endless
                return self._sse(chunks[:3] + [_chunk("……")] * 100, end=True, gap=0.3)
            raise AssertionError(f"unknown behaviour {b}")

        def _send(self, code: int, ctype: str, payload: bytes):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _sse(self, events: list[bytes], end: bool, gap: float = 0.01):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for e in events:
                self.wfile.write(f"{len(e):x}\r\n".encode() + e + b"\r\n")
                self.wfile.flush()
                if stub.stop.wait(gap):
                    return
            if end:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that gave up (timeout) is expected here
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture
def stub():
    s = Stub()
    server = QuietServer(("127.0.0.1", 0), make_handler(s))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    s.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield s
    s.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "corpus").mkdir()
    (root / "corpus" / "llm_interview_qa.md").write_text(BANK, encoding="utf-8")
    retriever, _ = build_retriever(Settings(corpus_dir=root / "corpus", index_dir=root / "index", embedder="hash"))
    return retriever


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def ask(retriever, base_url: str, question: str = KV_QUESTION, history=(), timeout: float = 5.0):
    llm = OpenAIChatLLM(base_url, MODEL, timeout=timeout, max_tokens=64)
    *pieces, answer = list(Coach(retriever, llm).ask_stream(question, history))
    assert isinstance(answer, Answer)
    return "".join(pieces), answer


def assert_extractive_fallback(answer: Answer, notice_words: tuple[str, ...]):
    assert answer.mode == "extractive" and not answer.declined and not answer.partial
    assert answer.citations and answer.citations[0].id == "Q1"
    assert "> " in answer.text and "[Q1]" in answer.text
    assert any(all(w in n for w in notice_words) and "reference answer" in n for n in answer.notices), answer.notices


# -- the good path, as the fault tests' baseline ------------------------------------------------------
def test_good_stream_through_the_real_client(stub, retriever):
    streamed, answer = ask(retriever, stub.base_url)
    assert answer.mode == MODEL and not answer.partial and answer.notices == ()
    assert answer.text == "推理时缓存 K/V [Q1]，另见 。"
    assert streamed.strip() == answer.text
    assert answer.dropped_citations == ("Q99",) and [c.id for c in answer.citations] == ["Q1"]
    sent = stub.requests[-1]
    assert sent["model"] == MODEL and sent["stream"] is True and sent["max_tokens"] == 64
    assert sent["messages"][0]["role"] == "system" and "<question>" in sent["messages"][-1]["content"]


@pytest.mark.parametrize("llm", ["fake", "openai"])
def test_contract_same_reply_same_answer(stub, retriever, llm):
    """FakeLLM and OpenAIChatLLM (via HTTP) give the coach the same pieces for the same reply."""
    reply = "".join(stub.words)
    model = FakeLLM(name=MODEL).enqueue(reply) if llm == "fake" else OpenAIChatLLM(stub.base_url, MODEL, timeout=5)
    answer = Coach(retriever, model).ask(KV_QUESTION)
    assert (answer.text, [c.id for c in answer.citations], answer.dropped_citations) == (
        "推理时缓存 K/V [Q1]，另见 。", ["Q1"], ("Q99",))
    if llm == "openai":
        assert model.chat([{"role": "user", "content": "hi"}]) == reply  # the non-streaming form too


# -- faults: the adapter's translation ----------------------------------------------------------------
def test_closed_port_is_unavailable(retriever):
    llm = OpenAIChatLLM(closed_port_url(), MODEL, timeout=2)
    with pytest.raises(LLMUnavailable, match="unreachable"):
        llm.chat([{"role": "user", "content": "hi"}])


def test_slow_server_times_out(stub):
    stub.behaviour = "slow"
    llm = OpenAIChatLLM(stub.base_url, MODEL, timeout=1)
    t = time.perf_counter()
    with pytest.raises(LLMUnavailable, match=r"within 1 s \(COACH_LLM_TIMEOUT\)"):
        list(llm.chat([{"role": "user", "content": "hi"}], stream=True))
    assert time.perf_counter() - t < 2.5


@pytest.mark.parametrize("behaviour", ["drop", "drop_clean"])
def test_dropped_stream_raises_after_the_pieces_that_arrived(stub, behaviour):
    stub.behaviour = behaviour
    got = []
    with pytest.raises(LLMUnavailable):
        for piece in OpenAIChatLLM(stub.base_url, MODEL, timeout=5).chat([{"role": "user", "content": "hi"}], stream=True):
            got.append(piece)
    assert got == stub.words[:3]


def test_wrong_model_names_the_setting(stub):
    stub.behaviour = "404"
    with pytest.raises(LLMConfigError, match="COACH_LLM_MODEL") as err:
        OpenAIChatLLM(stub.base_url, "no-such-model", timeout=5).chat([{"role": "user", "content": "hi"}])
    assert "'no-such-model'" in str(err.value) and "/models" in str(err.value)


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_is_a_bad_response(stub, stream):
    stub.behaviour = "malformed"
    llm = OpenAIChatLLM(stub.base_url, MODEL, timeout=5)
    with pytest.raises(LLMBadResponse, match="not valid chat-completion JSON"):
        reply = llm.chat([{"role": "user", "content": "hi"}], stream=stream)
        list(reply) if stream else reply


# -- faults: what the coach shows -----------------------------------------------------------------------
def test_server_down_gives_extractive_answer_and_notice(retriever):
    _, answer = ask(retriever, closed_port_url())
    assert_extractive_fallback(answer, ("unreachable",))


def test_slow_server_gives_extractive_answer_and_notice(stub, retriever):
    stub.behaviour = "slow"
    t = time.perf_counter()
    _, answer = ask(retriever, stub.base_url, timeout=1)
    assert time.perf_counter() - t < 2.5, "the coach must give up after the timeout, not wait for the server"
    assert_extractive_fallback(answer, ("did not answer within 1 s", "COACH_LLM_TIMEOUT"))


def test_trickling_server_is_cut_at_the_deadline_keeping_the_partial_answer(stub, retriever):
    stub.behaviour = "trickle"
    llm = OpenAIChatLLM(stub.base_url, MODEL, timeout=1, max_tokens=64, deadline=1.5)
    t = time.perf_counter()
    *pieces, answer = list(Coach(retriever, llm).ask_stream(KV_QUESTION))
    assert time.perf_counter() - t < 3.0, "the whole answer must stop at the deadline, not when the server stops"
    assert answer.partial and answer.mode == MODEL
    assert answer.text.startswith("推理时缓存 K/V [Q1]") and [c.id for c in answer.citations] == ["Q1"]
    assert any("within 1.5 s (COACH_LLM_DEADLINE)" in n and "cut short" in n for n in answer.notices), answer.notices


@pytest.mark.parametrize("behaviour", ["drop", "drop_clean"])
def test_dropped_stream_keeps_partial_text_marked_with_right_citations(stub, retriever, behaviour):
    stub.behaviour = behaviour
    streamed, answer = ask(retriever, stub.base_url)
    assert answer.partial and answer.mode == MODEL
    assert answer.text == "推理时缓存 K/V [Q1]"
    assert streamed.strip() == answer.text
    assert [c.id for c in answer.citations] == ["Q1"] and not answer.citations_attached
    assert set(parse_citations(answer.text)) <= {h.id for h in answer.hits[:4]}
    assert any(n.startswith("answer cut short") for n in answer.notices), answer.notices


def test_wrong_model_notice_names_the_setting(stub, retriever):
    stub.behaviour = "404"
    _, answer = ask(retriever, stub.base_url)
    assert_extractive_fallback(answer, ("COACH_LLM_MODEL", repr(MODEL)))


def test_malformed_json_gives_extractive_answer_and_notice(stub, retriever):
    stub.behaviour = "malformed"
    _, answer = ask(retriever, stub.base_url)
    assert_extractive_fallback(answer, ("not valid chat-completion JSON",))


def test_malformed_condense_reply_falls_back_to_the_rule(stub, retriever):
    stub.behaviour = "malformed"
    _, answer = ask(retriever, stub.base_url, KV_FOLLOWUP, [KV_QUESTION])
    assert any("fell back to the built-in rule" in n for n in answer.notices)
    assert answer.rewritten_query.startswith("KV Cache")
    assert len(stub.requests) == 2  # condense (non-streaming), then the answer (streaming): both malformed
    assert [r["stream"] for r in stub.requests] == [False, True]
    assert answer.mode == "extractive"


def test_server_down_on_a_followup_is_asked_once_and_not_waited_for_twice(stub, retriever):
    stub.behaviour = "slow"
    t = time.perf_counter()
    _, answer = ask(retriever, stub.base_url, KV_FOLLOWUP, [KV_QUESTION], timeout=1)
    assert time.perf_counter() - t < 2.5
    assert len(stub.requests) == 1
    assert answer.mode == "extractive" and any("COACH_LLM_TIMEOUT" in n for n in answer.notices)
