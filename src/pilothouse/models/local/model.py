"""`LocalModel`: the protocol adapter of the embedded runtime.

The request is mapped to llama.cpp's OpenAI-style chat completion (system, history,
temperature, max_output_tokens, stop, seed; `output_schema` as a JSON-schema
`response_format`, which llama.cpp enforces with a grammar; `grammar` as llama.cpp's
own). A request that ends with an assistant message is continued from it (llama.cpp's
assistant prefill, on in xllamacpp). The local models have no native tool calling, so
tools are emulated with constrained decoding (`pilothouse.models.emulation`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import BadRequestError, ConfigError, ModelNotAvailableError
from pilothouse.models.base import AdapterEvent, Finish, ProtocolModel
from pilothouse.models.emulation import emulate_tools
from pilothouse.models.local.catalog import CATALOG
from pilothouse.models.local.readiness import weights_readiness
from pilothouse.models.local.runtime import RUNTIMES, LlamaRuntime, RuntimeRegistry
from pilothouse.models.local.weights import (
    AssemblyProgress,
    ProgressCallback,
    resolve_weights,
)
from pilothouse.models.profiles import profile_for
from pilothouse.models.providers import Endpoint
from pilothouse.types import (
    FinishReason,
    ImagePart,
    Message,
    ModelRequest,
    TextDelta,
    Usage,
    UsageEvent,
)

log = logging.getLogger(__name__)

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "stop"}


class _ProgressLog:
    """Logs an assembly's progress every 10%."""

    def __init__(self, model_id: str):
        self.model_id = model_id
        self.step = -1

    def __call__(self, progress: AssemblyProgress) -> None:
        step = progress.done * 10 // max(progress.total, 1)
        if step != self.step:
            self.step = step
            verb = "assembling" if progress.phase == "join" else "verifying"
            log.info("%s %s weights: %d%%", verb, self.model_id, step * 10)


class _UntilStopped:
    """An assembly's progress callback that stops the assembly (raising) once `stop`
    is set: a server stopped while it assembles weights in the background (a copilot
    read ahead at start) stops at once instead of joining and hashing the rest."""

    def __init__(self, inner: ProgressCallback, stop: threading.Event, model_id: str):
        self.inner = inner
        self.stop = stop
        self.model_id = model_id

    def __call__(self, progress: AssemblyProgress) -> None:
        self.inner(progress)
        if self.stop.is_set():
            raise ModelNotAvailableError(
                f"{self.model_id} was closed while its weights were being assembled",
                model=self.model_id,
            )


class LocalModel(ProtocolModel):
    """A GGUF model served in-process by llama.cpp (see the module doc)."""

    emulates_tools = True
    """Tool calls are emulated here (create_model does not wrap it again)."""

    def runs_here(self) -> bool:
        return True

    def continues_assistant(self) -> bool:
        return True  # llama.cpp continues a final assistant message (prefill_assistant)

    def __init__(
        self,
        model_id: str,
        name: str,
        endpoint: Endpoint,
        settings: Settings,
        *,
        runtimes: RuntimeRegistry | None = None,
    ):
        # The window is what the runtime gives each request: [local] context_size.
        window = {"context_window": settings.local.context_size}
        super().__init__(model_id, profile_for(model_id, {**endpoint.profile, **window}))
        self.name = name
        self.endpoint = endpoint
        self.settings = settings
        self.runtimes = runtimes or RUNTIMES
        self._path: Path | None = None
        self._path_lock = threading.Lock()
        self._stop: threading.Event | None = None  # of the assembly in progress

    # --- readiness and weights -----------------------------------------------------

    readiness = staticmethod(weights_readiness)
    """The adapter's readiness check is the light one (`pilothouse.readiness` declares
    it too, so that a check does not import this module)."""

    def weights(self, progress: ProgressCallback | None = None) -> Path:
        """The GGUF path, assembling catalog weights the first time (blocking; an
        assembly in progress is stopped by `aclose`)."""
        with self._path_lock:
            if self._path is None:
                self._stop = threading.Event()
                watch = _UntilStopped(progress or _ProgressLog(self.id), self._stop, self.id)
                try:
                    self._path = resolve_weights(self.name, self.settings.models_dir, watch)
                finally:
                    self._stop = None
            return self._path

    async def runtime(self) -> LlamaRuntime:
        """The loaded runtime, assembling and loading on first use in worker threads."""
        path = self._path
        if path is None:
            path = await asyncio.to_thread(self.weights)
        return await self.runtimes.aget(path, self.settings.local)

    async def aclose(self) -> None:
        """Stop an assembly of the weights in progress (it raises and leaves no partial
        file; a later use assembles again). The loaded runtime is the process's, shared
        by every model of that file: it stays."""
        stop = self._stop
        if stop is not None:
            stop.set()

    # --- the request -----------------------------------------------------------------

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """llama.cpp's chat completion body for an (already emulated) request."""
        body: dict[str, Any] = {
            "messages": [self._message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            body["max_tokens"] = request.max_output_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.grammar is not None:
            if request.output_schema is not None:
                raise BadRequestError(
                    "a request takes a grammar or an output schema, not both", model=self.id
                )
            body["grammar"] = request.grammar
        if request.output_schema is not None:
            schema = request.output_schema
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.name, "schema": schema.schema, "strict": True},
            }
        return body

    def _message(self, message: Message) -> dict[str, Any]:
        if any(isinstance(p, ImagePart) for p in message.parts):
            raise BadRequestError(
                "this local model cannot read images; use a vision model for this request",
                model=self.id,
            )
        role = message.role
        if role == "system" and not self.profile.system_role:
            role = "user"
        return {"role": role, "content": message.text}

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        emulation = emulate_tools(
            request,
            parallel_tools=self.profile.parallel_tools,
            answer_first=self.profile.emulation_answer_first,
        )
        body = self.payload(emulation.request)
        runtime = await self.runtime()
        async for event in emulation.decode(self._events(runtime, body)):
            yield event

    async def _events(
        self, runtime: LlamaRuntime, body: dict[str, Any]
    ) -> AsyncIterator[AdapterEvent]:
        finish: FinishReason | None = None
        chunks = runtime.stream(body)
        try:
            async for chunk in chunks:
                usage = _usage(chunk)
                if usage is not None:
                    yield UsageEvent(usage)
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield TextDelta(text)
                    reason = choice.get("finish_reason")
                    if reason:
                        finish = _FINISH.get(reason, "stop")
        finally:
            await chunks.aclose()  # stops the generation when our caller stopped early
        if finish is not None:
            yield Finish(finish)


def _usage(chunk: dict[str, Any]) -> Usage | None:
    usage = chunk.get("usage")
    timings = chunk.get("timings")
    if not isinstance(usage, dict) and not isinstance(timings, dict):
        return None
    usage = usage if isinstance(usage, dict) else {}
    timings = timings if isinstance(timings, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or timings.get("cache_n") or 0)
    prompt = int(usage.get("prompt_tokens") or (cached + int(timings.get("prompt_n") or 0)))
    output = int(usage.get("completion_tokens") or timings.get("predicted_n") or 0)
    return Usage(prompt, output, cached)


def pull(
    model_id: str,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Make a local model's weights ready and return the GGUF path (blocking).

    `model_id` is `local:<name>` (or just `<name>`): a catalog model is assembled from
    its installed part packages and verified (nothing is redone when it already is);
    a `local:/path.gguf` is checked. `progress(done, total)` gets bytes joined (or, for
    a file found without its verification marker, bytes re-hashed) of the total.
    Raises `ModelNotAvailableError` (missing parts, naming the pip extra; a checksum
    mismatch; a bad path) or `ConfigError` for a non-local id.
    """
    provider, sep, name = model_id.partition(":")
    if not sep:
        name = model_id
    elif provider != "local":
        raise ConfigError(
            f"{model_id}: only local models have weights to pull; "
            f"use local:<name> with one of {', '.join(CATALOG)}"
        )
    report: ProgressCallback | None = None
    if progress is not None:
        callback = progress

        def report(event: AssemblyProgress) -> None:
            callback(event.done, event.total)

    return resolve_weights(name, settings.models_dir, report)
