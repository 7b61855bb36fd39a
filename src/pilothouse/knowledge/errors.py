"""The knowledge layer's errors, all within Pilothouse's one hierarchy."""

from __future__ import annotations

from pilothouse.errors import PilothouseError


class KnowledgeError(PilothouseError):
    """Something about a knowledge base went wrong."""


class LoadError(KnowledgeError):
    """One file could not be turned into a document. `reason` is short and says what
    to do; ingestion reports it for that file and goes on with the others."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class IndexMismatchError(KnowledgeError):
    """The index was built with other settings (embedding model, dimensions, chunking)
    than the ones asked for now; vectors of two models must never be mixed."""


class EmbeddingError(KnowledgeError):
    """The embedding model failed or answered something unusable."""
