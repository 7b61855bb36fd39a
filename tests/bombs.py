"""Small hostile inputs for the bounded-parsing tests (no Pilothouse imports, so a test
that uses them can also run against code from before the limits)."""

from __future__ import annotations


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" of YAML: each level repeats the one before `width` times
    (9 levels of 9: 387 million values in about 400 bytes)."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * width) + "]"]
    previous = "a"
    for number in range(1, levels):
        name = chr(ord("a") + number) if number < 26 else f"z{number}"
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * width) + "]")
        previous = name
    return "\n".join(lines) + "\n"
