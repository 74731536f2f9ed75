"""The index: chunks -> a saved hybrid index (BM25 + FAISS) and the vector cache that spares re-embedding."""
