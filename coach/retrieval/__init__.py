"""Retrieval: a question (and its conversation) -> ranked sections, fused, optionally reranked, with the
calibrated outcome (answer / related / decline) and the follow-up reading."""
