"""Interview Coach: a RAG coach over a bank of LLM interview questions.

Data flows one way: corpus -> chunking -> index -> retrieve (fusion, rerank,
decline, follow-ups) -> answer (Coach) -> front ends (CLI, Gradio app, Slack
bot, eval).  Heavy libraries are imported inside adapters and entry points.
"""
