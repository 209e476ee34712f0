"""The model gateway: embedding models now; chat and rerank providers arrive with the gateway."""
