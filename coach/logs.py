"""Logging for the entry points (app, CLI, Slack bot): one format, and libraries' probing kept quiet.

``configure_logging(logging.INFO)`` sets the root handler and lifts ``faiss.loader`` to WARNING:
at import faiss tries its AVX-512 and AVX2 builds and logs "Could not load library with AVX512
support due to: ModuleNotFoundError(...)" for each one this wheel lacks, at INFO.  That is faiss
choosing a build, not an error, and it was the first thing a new user read in the log.
"""

from __future__ import annotations

import logging

QUIET = {"faiss.loader": logging.WARNING, "faiss": logging.WARNING}


def configure_logging(level: int = logging.INFO, fmt: str = "%(levelname)s %(message)s") -> None:
    """The root logger at ``level`` with ``fmt``; the loggers in ``QUIET`` no lower than their level."""
    logging.basicConfig(level=level, format=fmt)
    for name, floor in QUIET.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(floor, level))
