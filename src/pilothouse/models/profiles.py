"""Model profiles: what each model family can do and costs, read from profiles.toml.

Adapters consult the profile instead of testing model names, so a new family is a
data change, not a code change. A profile is matched on the model's name at its host
(what follows `provider:` in the model id), so the same model gets the same family,
prompt variant and abilities on every host: `ollama:qwen2.5-coder:7b` and
`vllm:Qwen/Qwen2.5-Coder-7B-Instruct` are both the qwen family. An entry may be
limited to some providers (`provider = "local"`), and a provider entry or
`[providers.NAME] profile = {...}` in config.toml overrides fields for every model of
that host (`profile_for(model_id, overrides)`).
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources
from typing import Any

from pilothouse.errors import ConfigError
from pilothouse.types import Usage


@dataclass(frozen=True, slots=True)
class ModelProfile:
    match: str = "*"
    """Glob over the model's name at its host (case-insensitive)."""
    provider: str = "*"
    """Glob over the provider name: the entry applies only to these hosts."""
    family: str = "generic"
    native_tools: bool = True
    json_schema: bool = True
    system_role: bool = True
    parallel_tools: bool = True
    emulation_answer_first: bool = True
    """Emulated tools only: the instructions offer the plain answer before the calls."""
    grammar: bool = False
    """The adapter sends `ModelRequest.grammar` (llama.cpp's GBNF) and continues a
    request's final assistant message: a stepped answer's fixed JSON is then written
    for the model instead of decoded token by token (copilot/answer_opening.py)."""
    quoted_answers: bool = False
    """With `grammar`: a stepped answer from passages is made of the passages' own
    units (sentences, list items, table rows): the one of the passages the model named
    that is nearest the question, and two more only if as near, each with its marker,
    given by the runtime once the model has named the passages (copilot/quoted_answer.py). For
    models that answer wrongly in their own words with the right passage before them
    (the 0.5B)."""
    context_window: int | None = None
    """Tokens in + out, where known: requests that cannot fit are refused before they
    are sent, and a copilot trims old history to fit. None: unknown, nothing checked."""
    passage_budget: int | None = None
    """Tokens of retrieved passages a copilot sends this model: each passage is cut to
    its sentences most similar to the question to fit (copilot/passage_budget.py).
    None: the passages as retrieved."""
    read_ahead: int | None = None
    """Tokens of the rest of a turn's cut passages (their units not sent yet) read into
    the prompt cache while the user reads, and held before the next question's turn if
    it comes after that read began (copilot/passages_ahead.py). Only where every model
    of the chain runs in this process and cuts passages (`passage_budget`); None:
    nothing read (the turn's prompts as without it)."""
    default_max_tokens: int | None = None
    """Output tokens to ask for when the protocol requires a limit (Anthropic's
    `max_tokens`) and the request names none; None leaves it to the adapter."""
    input_price: float | None = None
    output_price: float | None = None
    cached_input_price: float | None = None

    def cost(self, usage: Usage) -> float | None:
        """US dollars for `usage`, or None where prices are unknown."""
        if self.input_price is None or self.output_price is None:
            return None
        cached_price = (
            self.cached_input_price if self.cached_input_price is not None else self.input_price
        )
        fresh_input = max(usage.input_tokens - usage.cached_tokens, 0)
        total = (
            fresh_input * self.input_price
            + usage.cached_tokens * cached_price
            + usage.output_tokens * self.output_price
        )
        return total / 1_000_000


PROFILE_FIELDS = frozenset(f.name for f in fields(ModelProfile)) - {"match", "provider"}
"""The fields a provider entry or config.toml may override."""


@cache
def _profiles() -> tuple[ModelProfile, ...]:
    text = resources.files("pilothouse.models").joinpath("profiles.toml").read_text("utf-8")
    known = {f.name for f in fields(ModelProfile)}
    entries: list[dict[str, Any]] = tomllib.loads(text)["profile"]
    for entry in entries:
        unknown = set(entry) - known
        if unknown:  # a typo in the shipped data must fail loudly in tests
            raise ValueError(f"profiles.toml: unknown keys {sorted(unknown)} in {entry}")
    return tuple(ModelProfile(**entry) for entry in entries)


def check_overrides(overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Profile fields to override, checked: `ConfigError` naming `where` otherwise."""
    unknown = sorted(set(overrides) - PROFILE_FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown profile fields {', '.join(unknown)} "
            f"(known: {', '.join(sorted(PROFILE_FIELDS))})"
        )
    return dict(overrides)


def profile_for(model_id: str, overrides: Mapping[str, Any] | None = None) -> ModelProfile:
    """The first profile whose `provider` and `match` globs fit the model id's provider
    and name (case-insensitive), with `overrides` applied."""
    provider, sep, name = model_id.partition(":")
    if not sep:
        provider, name = "", model_id
    provider, name = provider.lower(), name.lower()
    found = ModelProfile()
    for profile in _profiles():
        if fnmatch.fnmatchcase(provider, profile.provider.lower()) and fnmatch.fnmatchcase(
            name, profile.match.lower()
        ):
            found = profile
            break
    return replace(found, **overrides) if overrides else found
