"""Answers: a Retrieval -> an Answer (extractive or from an LLM), its prompts, checked citations and the
LLM's coverage judgement."""
