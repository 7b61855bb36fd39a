"""Model profiles: what each model family can do and costs, read from profiles.toml.

Adapters consult the profile instead of testing model names, so a new family is a
data change, not a code change.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

from pilothouse.types import Usage


@dataclass(frozen=True, slots=True)
class ModelProfile:
    match: str = "*"
    family: str = "generic"
    native_tools: bool = True
    json_schema: bool = True
    system_role: bool = True
    parallel_tools: bool = True
    emulation_answer_first: bool = True
    """Emulated tools only: the instructions offer the plain answer before the calls."""
    context_window: int = 32768
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


def profile_for(model_id: str) -> ModelProfile:
    """The first profile whose glob matches `model_id` (case-insensitive)."""
    lowered = model_id.lower()
    for profile in _profiles():
        if fnmatch.fnmatchcase(lowered, profile.match.lower()):
            return profile
    return ModelProfile()
