"""Identifying parameters of a tool, and concrete identifiers in its descriptions.

A parameter *identifies* something (an order, a ticket, a person) when its value must
come from the user, never from the model's imagination: a copilot checks such values
before a call runs (copilot/grounded_args.py). A parameter identifies when its JSON
Schema says `x-pilothouse-grounded: true`, or, unless it says `false`, when it is
inferred to:

- its name ends like an id, a record's key or a number (`order_id`, `issueKey`,
  `ticket_number`, `customer_email`, `sku`, `uuid`) or is one (`id`, `email`); a
  plain `key` (`sort_key`) is not taken for one;
- its format is `email`, `uuid` or `uri`'s cousins that name one thing (`email`, `uuid`);
- its description (or `examples`) gives a concrete example value ("e.g. SO-1001").

Only values a model writes freely are checked: strings and integers (and lists of
them), never enums or booleans.

`looks_like_a_quantity` and `looks_like_a_year` tell a bare number a user wrote that
names no thing ("It weighs 120 pounds", "the 2400 model", "in 2025") from one that may
("Is 3031 here yet?").

`concrete_identifiers(tool)` finds identifiers in a tool's description, parameter
descriptions and examples that a small model may copy into a call (SO-1001 in "The
order number, e.g. SO-1001"), each with a placeholder form to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

GROUNDED_KEY = "x-pilothouse-grounded"
"""The JSON Schema keyword that declares a parameter identifying (true) or not (false)."""

GroundedMode = Literal["strict", "warn", "off"]
"""strict: a call with an identifying value the user never gave does not run; warn: it
runs and the trace says so; off: not checked."""
GROUNDED_MODES: tuple[GroundedMode, ...] = ("strict", "warn", "off")

Why = Literal["declared", "name", "format", "example"]

_ID_NAME = re.compile(
    r"(?:^|[_-])(?:id|ids|number|no|num|email|ref|uuid|guid|sku)$"
    r"|[a-z0-9](?:Id|Ids|ID|Number|Email|Ref|Uuid)$"
    r"|(?:^|[_-]|[a-z])(?:issue|ticket|project|order|case|record)[_-]?[Kk]ey$"
    r"|^(?:id|email|uuid|guid|sku)$"
)
_ID_FORMATS = frozenset({"email", "idn-email", "uuid"})
_EXAMPLE_CUE = re.compile(
    r"\b(?:e\.\s?g\.?|eg\.|for example|for instance|such as|like)\s*[:,]?\s*",
    re.IGNORECASE,
)
# A value worth calling concrete: it has a digit or an @ (SO-1001, 12345, a@b.example).
_CONCRETE = re.compile(r"[`'\"]?([A-Za-z0-9][A-Za-z0-9._@/#:+-]*[A-Za-z0-9])[`'\"]?")

# Identifiers in free text, each with how to write its placeholder.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("uuid", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)),
    ("key", re.compile(r"\b[A-Z][A-Z0-9]{0,9}[-_#]?\d{2,}\b")),
    ("number", re.compile(r"(?<![\w.,:-])\d{4,}(?![\w.,:-]?\d)")),
)


@dataclass(frozen=True, slots=True)
class ConcreteIdentifier:
    """An identifier found in a tool's text: where (`description` or
    `parameters.NAME.description|examples`), the value, and a placeholder to use."""

    tool: str
    where: str
    value: str
    placeholder: str

    def warning(self) -> str:
        return (
            f"tool {self.tool}: {self.where} contains the concrete identifier "
            f"{self.value!r}, which a model may copy into its calls; write a placeholder "
            f"such as {self.placeholder!r} instead"
        )


def identifying_parameters(parameters: Mapping[str, Any]) -> dict[str, Why]:
    """The top-level parameters of a JSON Schema that identify something, and why."""
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    found: dict[str, Why] = {}
    for name, schema in properties.items():
        if not isinstance(schema, Mapping):
            continue
        why = _why(str(name), schema)
        if why is not None:
            found[str(name)] = why
    return found


def _why(name: str, schema: Mapping[str, Any]) -> Why | None:
    declared = schema.get(GROUNDED_KEY)
    if declared is not None:
        return "declared" if declared is True else None
    if not _free_value(schema):
        return None
    if _ID_NAME.search(name):
        return "name"
    if str(schema.get("format", "")).lower() in _ID_FORMATS:
        return "format"
    if example_values(schema):
        return "example"
    return None


def _free_value(schema: Mapping[str, Any]) -> bool:
    """A string or integer the model writes itself (not an enum or const), or a list of them."""
    if "enum" in schema or "const" in schema:
        return False
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds & {"string", "integer"}:
        return True
    if "array" in kinds and isinstance(schema.get("items"), Mapping):
        return _free_value(schema["items"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):  # Optional[str] and friends
        return any(isinstance(o, Mapping) and _free_value(o) for o in options)
    return False


def example_values(schema: Mapping[str, Any]) -> list[str]:
    """Concrete example values a parameter's schema shows: `examples`/`example`, and
    what follows "e.g.", "for example", "such as" or "like" in its description."""
    values: list[str] = []
    for key in ("examples", "example"):
        raw = schema.get(key)
        for item in raw if isinstance(raw, list) else [raw]:
            if isinstance(item, str | int) and not isinstance(item, bool) and _concrete(str(item)):
                values.append(str(item))
    description = schema.get("description")
    if isinstance(description, str):
        for cue in _EXAMPLE_CUE.finditer(description):
            match = _CONCRETE.match(description, cue.end())
            if match is not None and _concrete(match.group(1)):
                values.append(match.group(1))
    return values


def _concrete(value: str) -> bool:
    return any(c.isdigit() for c in value) or "@" in value


def concrete_identifiers(
    name: str, description: str, parameters: Mapping[str, Any]
) -> list[ConcreteIdentifier]:
    """Identifiers in a tool's description and its parameters' descriptions and
    examples that a model may copy (one per value and place)."""
    found: list[ConcreteIdentifier] = []
    for where, text in _texts(description, parameters):
        seen: set[str] = set()
        for value, placeholder in _identifiers_in(text):
            if value not in seen:
                seen.add(value)
                found.append(ConcreteIdentifier(name, where, value, placeholder))
    return found


def _texts(description: str, parameters: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    yield "the description", description
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return
    for param, schema in properties.items():
        if not isinstance(schema, Mapping):
            continue
        if isinstance(schema.get("description"), str):
            yield f"parameter {param}'s description", schema["description"]
        for key in ("examples", "example", "default"):
            raw = schema.get(key)
            items = raw if isinstance(raw, list) else [raw]
            strings = [
                str(i) for i in items if isinstance(i, str | int) and not isinstance(i, bool)
            ]
            if strings and key != "default":
                yield f"parameter {param}'s {key}", " ".join(strings)


def _identifiers_in(text: str) -> Iterator[tuple[str, str]]:
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            value = match.group(0)
            if kind == "number" and looks_like_a_year(value):
                continue
            taken.append(span)
            yield value, placeholder_for(value, kind)


_IN_TEXT = re.compile(r"[\w.+-]*@[\w.-]+\w|[A-Za-z]*[-_#]?\d{3,}[A-Za-z0-9]*")


def identifiers_in_text(text: str) -> list[str]:
    """What names a thing in free text: a token with three digits or more, or an email
    ("SO-1001", "1001", "P2725H", "jo@x.example"); not a bare year, nor a quantity, a
    price or a model number written as one ("120 pounds", "£120.50", "the 2400 model":
    `looks_like_a_quantity`)."""
    found: list[str] = []
    for match in _IN_TEXT.finditer(text):
        value = match.group(0).strip(".-_")
        if looks_like_a_year(value) or looks_like_a_quantity(text, match.start(), match.end()):
            continue
        found.append(value)
    return found


_NOT_IN_SQUASHED = re.compile(r"[^a-z0-9@.]+")


def squashed(text: str) -> str:
    """`text` as identifiers are compared: lower case, letters, digits, @ and dots only
    ("SO-1001", "so 1001" and "SO1001" are all "so1001")."""
    return _NOT_IN_SQUASHED.sub("", text.lower())


def looks_like_a_year(value: str) -> bool:
    """A bare year (1900-2099): "I bought it in 2025" names no order."""
    return len(value) == 4 and value.isdecimal() and 1900 <= int(value) <= 2099


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_UNITS = _wordset(
    """mg gram grams kg kilo kilos kilogram kilograms lb lbs pound pounds oz ounce ounces
    ton tons tonne tonnes stone mm cm km inch inches ft foot feet yd yard yards metre
    metres meter meters mile miles sq square cubic ml litre litres liter liters gallon
    gallons kw watt watts volt volts amp amps mah wh kwh hz khz mhz ghz rpm btu kb mb gb
    tb kbps mbps gbps dpi px pixel pixels sec secs second seconds min mins minute minutes
    hr hrs hour hours day days week weeks month months year years pence penny dollar
    dollars usd euro euros eur gbp quid bucks cent cents percent per degree degrees page
    pages sheet sheets copy copies people person user users item items unit units piece
    pieces model models series edition"""
)
"""Words after a number that make it a quantity, a price or a model number ("120
pounds", "300 square feet", "the 2400 model")."""
_ATTACHED_UNITS = _UNITS | _wordset("g m l s h p v w a c f k")
"""Units written onto the number ("120kg", "2400mAh", "20p")."""
_QUANTITY_BEFORE = _wordset(
    """model models type version series size mark cost costs costing costed price priced
    paid pay pays spent spend weigh weighs weighed weighing"""
)
"""Words before a number that make it a model number, a price or a weight ("model
2400", "paid 120")."""
_CURRENCY = ("£", "$", "€", "¥")
_BARE_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)([A-Za-z]*)")  # "120", "120.50", "2400mAh"
_WORD_BEFORE = re.compile(r"([A-Za-z]+)[^A-Za-z0-9]*$")
_WORD_AFTER = re.compile(r"(?:[.,]\d+)*\s*(%|[A-Za-z]+)")
_GROUPED = re.compile(r"\d+(?:[.,]\d+)*[.,]$")


def looks_like_a_quantity(text: str, start: int, end: int) -> bool:
    """Whether the number at `text[start:end]` is a quantity, a price or a model
    number rather than an id: a unit written onto it ("2400mAh") or after it ("120
    pounds", "30 days", "15%"), a currency sign before it ("£120", "$1,250"), or
    "model", "paid", "weighs" and their like next to it ("the 2400 model", "model
    2400", "cost 1,250 dollars"); a number with decimals or groups may be read whole
    ("£120.50") or from any of its digit runs. A number with a letter prefix (SO-1001) is never one,
    nor a bare number in a sentence that asks about it ("Is 3031 here yet?"); a bare
    year is `looks_like_a_year`'s."""
    number = _BARE_NUMBER.fullmatch(text, start, end)
    if number is None:
        return False
    if number.group(2):
        return number.group(2).lower() in _ATTACHED_UNITS
    grouped = _GROUPED.search(text, 0, start)  # "1,250": read from its first digits
    before = text[: grouped.start() if grouped else start].rstrip()
    if before.endswith(_CURRENCY):
        return True
    word = _WORD_BEFORE.search(before)
    if word is not None and word.group(1).lower() in _QUANTITY_BEFORE:
        return True
    after = _WORD_AFTER.match(text, end)
    return after is not None and (after.group(1) == "%" or after.group(1).lower() in _UNITS)


def name_in_words(name: str) -> str:
    """A tool's or parameter's name as words: `order_status` -> "order status",
    `issueKey` -> "issue Key"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")


def placeholder_for(value: str, kind: str = "key") -> str:
    """A placeholder that keeps the identifier's shape but is not a value: SO-1001 ->
    SO-NNNN, 12345 -> NNNNN, an email -> <email address>."""
    if kind == "email":
        return "<email address>"
    if kind == "uuid":
        return "<uuid>"
    return re.sub(r"\d", "N", value)


def mask_identifiers(text: str) -> str:
    """`text` with every concrete identifier replaced by its placeholder (what a small
    model is shown, so it has nothing to copy)."""
    spans = sorted(
        (match.span(), placeholder_for(match.group(0), kind))
        for kind, pattern in _PATTERNS
        for match in pattern.finditer(text)
        if not (kind == "number" and looks_like_a_year(match.group(0)))
    )
    out: list[str] = []
    position = 0
    for (start, end), placeholder in spans:
        if start < position:
            continue
        out.append(text[position:start])
        out.append(placeholder)
        position = end
    out.append(text[position:])
    return "".join(out)
