"""Knowledge: ground copilots on an organisation's own documents, with citations.

Loaders turn files into structured documents; chunking keeps provenance (source,
page, heading path, offsets); each chunk is indexed for BM25 (SQLite FTS5) and dense
search (an embedding model behind the `Embedder` interface); retrieval fuses both.
"""

from pilothouse.knowledge.base import REINDEX_HINT, KnowledgeBase
from pilothouse.knowledge.chunking import Chunker, ChunkingSettings
from pilothouse.knowledge.documents import Block, Chunk, Document, SearchResult
from pilothouse.knowledge.embeddings import ClientEmbedder, Embedder, EmbeddingClient
from pilothouse.knowledge.errors import (
    EmbeddingError,
    IndexMismatchError,
    KnowledgeError,
    LoadError,
)
from pilothouse.knowledge.fusion import FusionSettings
from pilothouse.knowledge.ingestion import (
    FileOutcome,
    IngestOptions,
    IngestProgress,
    IngestReport,
)
from pilothouse.knowledge.loaders import load_file
from pilothouse.knowledge.locations import base_path, copilot_base_path, default_base_path
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.rerank import RelevanceJudge, RerankSettings, rerank
from pilothouse.knowledge.retrieval import SearchOptions

__all__ = [
    "REINDEX_HINT",
    "Block",
    "Chunk",
    "Chunker",
    "ChunkingSettings",
    "ClientEmbedder",
    "Document",
    "Embedder",
    "EmbeddingClient",
    "EmbeddingError",
    "FileOutcome",
    "Filters",
    "FusionSettings",
    "IndexMismatchError",
    "IngestOptions",
    "IngestProgress",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeError",
    "LoadError",
    "RelevanceJudge",
    "RerankSettings",
    "SearchOptions",
    "SearchResult",
    "base_path",
    "copilot_base_path",
    "default_base_path",
    "load_file",
    "rerank",
]
