"""Running GGUF models in-process with `xllamacpp` (llama.cpp's server as a library).

One `LlamaRuntime` per GGUF path per process: the weights are loaded once and shared
by every `LocalModel` through a `RuntimeRegistry`. Requests go to llama.cpp's server
slots (`settings.local.parallel` at once; more wait in its queue), each slot keeping
the KV cache of its last prompt so an unchanged prefix (system prompt, tools, earlier
turns) is not processed again (`cache_prompt`; the server picks the slot whose cached
prompt shares the longest prefix, and parks idle slots' caches in RAM).

The binding's calls block, so they run in worker threads; streamed chunks reach the
event loop through a thread-safe hand-off (`loop.call_soon_threadsafe` onto an
`asyncio.Queue`). Closing a stream early tells the binding to stop at the next token.

llama.cpp also starts its HTTP listener inside the binding; it is bound to 127.0.0.1
on a random port and locked with a random API key that never leaves this process, and
the web UI, /slots and /metrics are off. Pilothouse itself never uses it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pilothouse.config import LocalSettings
from pilothouse.errors import (
    BadRequestError,
    ContextTooLongError,
    ModelError,
    ModelNotAvailableError,
    UnavailableError,
)

log = logging.getLogger(__name__)

# Host RAM llama.cpp may use to park idle slots' prompt caches (its default is 8 GiB).
PROMPT_CACHE_RAM_MIB = 1024

Chunk = dict[str, Any]
ChunkCallback = Callable[[Chunk], bool]


class ChatServer(Protocol):
    """The part of `xllamacpp.Server` the runtime uses (a test double can stand in)."""

    def handle_chat_completions(self, prompt: dict[str, Any], callback: ChunkCallback) -> Any: ...


ServerFactory = Callable[[Path, LocalSettings], ChatServer]


# llama.cpp's CPU threads meet at OpenMP barriers many times per token. By default
# OpenMP spins there, which is fastest on cores nobody else wants; on a busy machine the
# spinning thread holds the core the other one needs. Measured on the shared 2-core VM
# (load 11-15, Qwen2.5-Coder-0.5B, 2 threads): decoding 0.3-0.7 tok/s spinning,
# 15-21 tok/s with PASSIVE; prompt processing 10-15 against 19-27 tok/s (1 thread:
# 5-7 and 18-20). GOMP_SPINCOUNT=10000 was still 2-3 tok/s.
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
_OPENMP_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def openmp_environment(environ: MutableMapping[str, str]) -> bool:
    """Make OpenMP threads sleep rather than spin while they wait (`OPENMP_DEFAULTS`),
    unless the environment already says how (`OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`:
    set OMP_WAIT_POLICY=ACTIVE on a machine that runs nothing else). OpenMP reads it
    when it is first loaded, so this runs before xllamacpp is imported. Returns whether
    anything was set."""
    if any(name in environ for name in _OPENMP_CHOICES):
        return False
    environ.update(OPENMP_DEFAULTS)
    return True


def load_xllamacpp(path: Path, settings: LocalSettings) -> ChatServer:
    """Load `path` with xllamacpp (blocking: seconds)."""
    openmp_environment(os.environ)
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelNotAvailableError(
            "the local runtime (xllamacpp) is not installed; install it with "
            "pip install 'pilothouse[local]'",
            model=f"local:{path}",
        ) from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    slots = max(settings.parallel, 1)
    params.n_parallel = slots
    # llama.cpp splits n_ctx among the slots: each request gets context_size tokens.
    params.n_ctx = settings.context_size * slots
    threads = settings.threads if settings.threads > 0 else -1  # -1: one per physical core
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_prompt = True
    # A request ending with an assistant message is continued from it (LocalModel
    # .continues_assistant; a stepped answer's opening, copilot/answer_opening.py).
    params.prefill_assistant = True
    params.cache_ram_mib = PROMPT_CACHE_RAM_MIB
    # llama.cpp repacks some weight types at load into interleaved layouts (Q4_K,
    # Q6_K, Q4_0, Q8_0 ...). With the shipped 1.5B on 2 cores (benchmarks/latency/
    # layouts.py, one process) that read prompts at 0.83x and decoded at 1.2-1.25x of
    # the weights as stored. A grounded answer reads hundreds of new tokens before its
    # first one, so the stored layout is the default (`[local] repack = true` to choose).
    params.no_extra_bufts = not settings.repack
    params.verbosity = -1 if not log.isEnabledFor(logging.DEBUG) else 3
    # The in-process HTTP listener: loopback, random port, a key nobody knows.
    params.api_keys = [secrets.token_urlsafe(32)]
    params.ui = False
    params.endpoint_slots = False
    params.endpoint_metrics = False
    params.n_threads_http = 1
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:
        raise ModelNotAvailableError(
            f"llama.cpp could not load {path} ({exc}); check that the file is a complete "
            "GGUF model and that there is enough memory",
            model=f"local:{path}",
        ) from exc
    wait_for_serving_loop(server, path)
    return server  # type: ignore[no-any-return]


LOOP_PROBE = {"prompt": [0], "max_tokens": 1, "cache_prompt": False}
"""A request only llama.cpp's serving loop answers: one token after a one-token prompt."""


def wait_for_serving_loop(server: Any, path: Path) -> None:
    """Return once `server`'s serving loop has answered a request, so that the server
    can be dropped at any time after.

    `xllamacpp.Server()` returns when the model is loaded, before its init thread has
    entered llama.cpp's serving loop (`server_queue::start_loop`), which marks its
    queue running as it starts. A server destroyed in between (a runtime unloaded, or
    a process's last reference dropped, right after loading) sends its stop before
    the loop starts; the loop then runs on and the destructor joins it forever, with
    the GIL held, so the whole process stops (4 of 20 fresh processes that loaded and
    unloaded at once, before this guard; docs/local-model.md "Unloading right after
    loading"). Only the loop answers a request, so once one is answered the stop is
    seen. `LOOP_PROBE` costs one token; its answer is dropped."""
    answers: list[Any] = []

    def keep(answer: Any) -> bool:
        answers.append(answer)
        return False

    server.handle_completions(dict(LOOP_PROBE), keep)
    if not answers or not isinstance(answers[0], dict) or "error" in answers[0]:
        log.warning(
            "%s: llama.cpp's serving loop did not answer its first request (%r); "
            "unloading this model may hang",
            path.name,
            answers[:1],
        )


@dataclass(frozen=True, slots=True)
class _Done:
    error: BaseException | None = None


def error_for_chunk(body: dict[str, Any], model: str) -> ModelError:
    """The typed error for an error object llama.cpp returned."""
    error = body.get("error", body)
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = str(error.get("message") or "unknown error")
    kind = str(error.get("type") or "")
    code = error.get("code")
    status = code if isinstance(code, int) else None
    if kind == "exceed_context_size_error" or "context size" in message:
        return ContextTooLongError(
            f"{message} (raise [local] context_size in config.toml, or send less)",
            model=model,
            status=status,
        )
    if kind in ("invalid_request_error", "not_supported_error") or status == 400:
        return BadRequestError(message, model=model, status=status)
    return UnavailableError(f"the local runtime failed: {message}", model=model, status=status)


class LlamaRuntime:
    """One loaded GGUF model and its server slots."""

    def __init__(self, server: ChatServer, path: Path, settings: LocalSettings, load_s: float = 0):
        self.server = server
        self.path = path
        self.settings = settings
        self.load_s = load_s
        self.model = f"local:{path.name}"
        # Threads that wait on the binding: one per slot plus a few queued requests.
        self._executor = ThreadPoolExecutor(
            max_workers=max(settings.parallel, 1) + 2, thread_name_prefix="pilothouse-llama"
        )
        self._closed = False

    @classmethod
    def load(
        cls, path: Path, settings: LocalSettings, factory: ServerFactory = load_xllamacpp
    ) -> LlamaRuntime:
        started = time.monotonic()
        server = factory(path, settings)
        load_s = time.monotonic() - started
        log.info("loaded %s in %.1f s", path.name, load_s)
        return cls(server, path, settings, load_s)

    async def stream(self, payload: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        """Run a streaming chat completion; yield its chunks (dicts) as they come.
        Raises a typed `ModelError` for an error the server reports. Closing the
        iterator early stops the generation at the next token."""
        if self._closed:
            raise UnavailableError("the local runtime was unloaded", model=self.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | _Done] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(item: Chunk | _Done) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def on_chunk(chunk: Chunk) -> bool:
            if not stop.is_set():
                hand_over(chunk)
            return stop.is_set()  # True tells the binding to stop generating

        def work() -> None:
            if stop.is_set():  # closed while it waited for a thread
                return
            try:
                self.server.handle_chat_completions(dict(payload, stream=True), on_chunk)
            except BaseException as exc:  # reported on the loop, not lost in a thread
                hand_over(_Done(exc))
            else:
                hand_over(_Done())

        # submit, not run_in_executor: a thread finishing after the loop closed must
        # not try to report back to it.
        self._executor.submit(work)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise self._typed(item.error) from item.error
                    return
                if "error" in item:
                    raise error_for_chunk(item, self.model)
                yield item
        finally:
            stop.set()

    def _typed(self, error: BaseException) -> ModelError:
        if isinstance(error, ModelError):
            return error
        if isinstance(error, ValueError | TypeError):  # the binding's bad-request errors
            return BadRequestError(str(error), model=self.model)
        return UnavailableError(f"the local runtime failed: {error}", model=self.model)

    def close(self) -> None:
        """Stop accepting requests and release the worker threads (the weights are
        freed when the last reference to the server goes)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


class RuntimeRegistry:
    """Loaded runtimes by GGUF path: each file is loaded once per registry, however
    many models use it, and concurrent first uses wait for the same load.

    `RUNTIMES` below is the process-wide registry every `LocalModel` shares by default
    (weights are a process resource: loading the same file twice would double the
    memory). Tests and embedders may pass their own.
    """

    def __init__(self, factory: ServerFactory = load_xllamacpp):
        self._factory = factory
        self._lock = threading.Lock()
        self._loading: dict[Path, threading.Lock] = {}
        self._runtimes: dict[Path, LlamaRuntime] = {}

    def get(self, path: Path, settings: LocalSettings) -> LlamaRuntime:
        """The runtime for `path`, loading it on first use (blocking)."""
        key = path.resolve()
        with self._lock:
            runtime = self._runtimes.get(key)
            if runtime is not None:
                self._warn_if_different(runtime, settings)
                return runtime
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                runtime = self._runtimes.get(key)
            if runtime is None:
                runtime = LlamaRuntime.load(key, settings, self._factory)
                with self._lock:
                    self._runtimes[key] = runtime
                    self._loading.pop(key, None)
            return runtime

    async def aget(self, path: Path, settings: LocalSettings) -> LlamaRuntime:
        """`get` in a worker thread, so loading never blocks the event loop."""
        return await asyncio.to_thread(self.get, path, settings)

    def loaded(self) -> list[Path]:
        with self._lock:
            return list(self._runtimes)

    def unload(self, path: Path) -> bool:
        """Forget the runtime of `path` (its memory is freed once no request uses it)."""
        with self._lock:
            runtime = self._runtimes.pop(path.resolve(), None)
        if runtime is None:
            return False
        runtime.close()
        return True

    def unload_all(self) -> None:
        for path in self.loaded():
            self.unload(path)

    @staticmethod
    def _warn_if_different(runtime: LlamaRuntime, settings: LocalSettings) -> None:
        if settings != runtime.settings:
            log.warning(
                "%s is already loaded with %s; ignoring the different settings %s "
                "(one load per file per process)",
                runtime.path.name,
                runtime.settings,
                settings,
            )


RUNTIMES = RuntimeRegistry()
"""The process-wide registry (a cache of loaded weights keyed by path)."""
