"""The bank: Markdown question banks -> Sections, their glossary aliases, similar questions, the off-topic
reference questions, and Sections -> Chunks (the first stage of the flow; imports nothing later)."""
