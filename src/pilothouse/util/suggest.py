""" "Did you mean ...?" for a misspelt name: a field, a provider, a tool function."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` when one is close enough to be a typo, else None."""
    options = [c for c in choices if c != word]
    folded = {c.lower(): c for c in options}
    match = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.7)
    return folded[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'X'?)`, or "" when nothing is close."""
    best = closest(word, choices)
    return f" (did you mean {best!r}?)" if best else ""


def model_id_hint(model_id: str, providers: Iterable[str]) -> str:
    """A suggestion for a model id that is not `provider:model`: `openai/gpt-4o` and
    `openai.gpt-4o` are `openai:gpt-4o`; a bare known model name gets its provider."""
    for separator in ("/", ".", " "):
        head, sep, tail = model_id.partition(separator)
        if sep and tail and head in set(providers):
            return f"; did you mean {head}:{tail}?"
    return ""
