"""Chat, embedding and rerank providers, one module per wire protocol or backend."""
