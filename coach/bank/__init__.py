"""The bank: Markdown question banks -> Sections, their glossary aliases, similar questions, each key point's
right and wrong claims (claims.py), the off-topic reference questions, and Sections -> Chunks (the first stage of the flow; imports nothing later)."""
