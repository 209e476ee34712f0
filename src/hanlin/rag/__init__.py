"""Answers with citations from knowledge bases (retrieval-augmented generation)."""
