"""The copilot's prompt, rendered for the model family that will answer.

The instructions are inline text or a Prompty file; a family may have its own
variant (copilot.yaml `model.variants`, or `instructions.<family>.prompty` beside the
base file). Because in a fallback chain the answering model is only known when the
call is made, each model of the chain is wrapped in a `PromptedModel` that puts the
head of the conversation (rendered for its own family) in front of the request.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.copilot.prompty import Prompty, load_prompty, variant_path
from pilothouse.models.base import Model, WrapperModel
from pilothouse.models.context import fit_history
from pilothouse.types import Message, ModelRequest, ModelResponse, StreamEvent

Head = Callable[[str], Sequence[Message]]
"""Model family -> the messages that start the request."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A prompt split where the conversation history goes: the leading system
    messages, and what follows them (the final user turn, if the template has one)."""

    system: tuple[Message, ...]
    tail: tuple[Message, ...]


class Instructions:
    """Loads the instructions once per family and renders them per request."""

    def __init__(
        self,
        definition: CopilotDefinition,
        folder: Path,
        environ: Mapping[str, str],
        *,
        variants: bool = True,
        prompt: str | None = None,
    ):
        self.definition = definition
        self.folder = folder
        self.environ = environ
        self.variants = variants
        """False: every family gets the base instructions (evals measure what variants buy)."""
        self.prompt = prompt
        """A .prompty file (relative to the folder) every family gets instead (a
        promotion's candidate prompt)."""
        self._prompts: dict[str, Prompty | None] = {}

    def source_for(self, family: str) -> Path | None:
        """The Prompty file used for `family`, or None for inline instructions."""
        if self.prompt is not None:
            return self.folder / self.prompt
        explicit = self.definition.model.variants.get(family) if self.variants else None
        if explicit:
            return self.folder / explicit
        base = self.definition.instructions_file
        if base is None:
            return None
        return variant_path(self.folder / base, family) if self.variants else self.folder / base

    def _prompty(self, family: str) -> Prompty | None:
        if family not in self._prompts:
            path = self.source_for(family)
            # The file's connection is never used here (copilot.yaml chooses the model):
            # its ${env:} references stay unresolved rather than fail the copilot.
            self._prompts[family] = (
                None
                if path is None
                else load_prompty(path, environ=self.environ, defer_connections=True)
            )
        return self._prompts[family]

    def base(self) -> Prompty | None:
        """The instructions Prompty itself (no family variant); None when inline."""
        return self._prompty("")

    def check(self) -> None:
        """Load every Prompty the copilot may use (the base, copilot.yaml's variants and
        `instructions.<family>.prompty` files beside the base), so a broken file fails
        when the copilot opens, not at its first question."""
        self.base()
        for family in self.definition.model.variants:
            self._prompty(family)
        base = self.definition.instructions_file
        if base is None or not self.variants:
            return
        stem = Path(base).name.removesuffix(".prompty")
        for sibling in sorted((self.folder / base).parent.glob(f"{stem}.*.prompty")):
            family = sibling.name[len(stem) + 1 : -len(".prompty")]
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", family):
                self._prompty(family)

    def render(self, family: str, inputs: Mapping[str, object]) -> Rendered:
        prompty = self._prompty(family)
        if prompty is None:
            return Rendered((Message.system(self.definition.instructions.strip()),), ())
        messages = prompty.render(inputs)
        split = 0
        while split < len(messages) and messages[split].role == "system":
            split += 1
        return Rendered(tuple(messages[:split]), tuple(messages[split:]))


class PromptedModel(WrapperModel):
    """Puts `head(family)` in front of every request to `inner`, leaving out the oldest
    conversation turns where the whole would not fit the model's context window."""

    def __init__(self, inner: Model, head: Head):
        super().__init__(inner)
        self.head = head

    def _full(self, request: ModelRequest) -> ModelRequest:
        full = replace(request, messages=(*self.head(self.profile.family), *request.messages))
        return fit_history(full, self.profile)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.inner.complete(self._full(request))

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        return self.inner.stream(self._full(request))
