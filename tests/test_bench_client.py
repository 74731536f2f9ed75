"""bench/app_load.py's browser-protocol client against a tiny Gradio app: per-session state, state inputs
filled as the page fills them, errors raised."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import gradio as gr
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("app_load", ROOT / "bench" / "app_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_app():
    def count(text, seen):
        if text == "boom":
            raise gr.Error("boom asked")
        seen = (seen or []) + [text]
        return f"{len(seen)}: {' / '.join(seen)}", seen

    with gr.Blocks() as demo:
        seen = gr.State([])
        box, out, go = gr.Textbox(), gr.Textbox(), gr.Button()
        go.click(count, [box, seen], [out, seen], api_name="count")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_each_browser_session_keeps_its_own_state(tiny_app):
    bench = _load_bench()
    a, b = bench.BrowserClient(tiny_app), bench.BrowserClient(tiny_app)
    assert a.predict("x", api_name="/count") == "1: x"
    assert b.predict("y", api_name="/count") == "1: y"
    assert a.predict("z", api_name="/count") == "2: x / z"


def test_a_failing_event_raises_with_the_endpoint_named(tiny_app):
    client = _load_bench().BrowserClient(tiny_app)
    with pytest.raises(RuntimeError, match="/count failed"):
        client.predict("boom", api_name="/count")
