"""Load a Prompty file of any generation and render it into messages.

    prompty = load_prompty("prompts/chat.prompty")
    prompty.generation            # "A", "B" or "C"
    prompty.definition            # PromptDefinition: model, inputs, outputs, tools, ...
    messages = prompty.render({"question": "How do I reset my password?"})

Rendering validates the inputs (a missing required input is an error naming it;
declared defaults fill the rest), renders the template in the sandbox with a fresh
nonce on every role marker, cuts the text into messages at the markers that carry that
nonce, and expands thread inputs into the conversation messages they hold.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pilothouse.types import ImagePart, Message

from .definition import Generation, PromptDefinition
from .document import PromptyDocument
from .errors import PromptyError, PromptyInputError
from .generations import build_definition
from .parse import Segment, image_part, segment_message, split_messages, thread_messages
from .properties import PropertySpec, is_sequence, kind_accepts, kind_words
from .render import ROLES_A, ROLES_BC, THREAD_VARIABLE, CompiledTemplate
from .role_escaping import escape_roles, unescape_roles

MAX_PROMPTY_BYTES = 5_000_000
_CHAT_APIS = frozenset({"chat", "responses"})
_UNSUPPORTED_KINDS = frozenset({"audio", "file"})


class Prompty:
    """A loaded Prompty file: its document, its normalised definition, and a compiled
    template ready to render."""

    def __init__(
        self,
        document: PromptyDocument,
        definition: PromptDefinition,
        *,
        path: Path | None,
        base_dir: Path,
    ) -> None:
        self.document = document
        self.definition = definition
        self.path = path
        self.base_dir = base_dir
        self._roles = ROLES_A if definition.generation == "A" else ROLES_BC
        self._chat = definition.model.api.lower() in _CHAT_APIS
        for prop in definition.inputs:
            if prop.kind in _UNSUPPORTED_KINDS:
                raise PromptyError(
                    f"the input {prop.name!r} is of kind {prop.kind}: Pilothouse's models take "
                    f"text and images, not {prop.kind} parts; pass the {prop.kind}'s text (a "
                    f"transcript, the file's content) as a string input instead",
                    path=path,
                    line=self._input_line(prop.name),
                    field=f"inputs.{prop.name}",
                )
        self._template = CompiledTemplate(
            definition.body,
            fmt=definition.template.format,
            roles=self._roles,
            path=path,
            first_line=document.body_line,
            mark=self._chat,
            trim_blocks=definition.generation == "A",
            folder=base_dir,
        )

    @property
    def generation(self) -> Generation:
        return self.definition.generation

    @property
    def name(self) -> str:
        return self.definition.name

    def __repr__(self) -> str:
        where = self.path if self.path is not None else self.base_dir
        return f"Prompty({self.name!r}, generation={self.generation!r}, path={str(where)!r})"

    # --- inputs ------------------------------------------------------------------

    def resolve_inputs(self, inputs: Mapping[str, object] | None = None) -> dict[str, Any]:
        """The values the template sees: `inputs`, plus declared defaults for inputs not
        given. Raises `PromptyInputError` naming every missing required input, or an
        input whose value has the wrong kind or is not one of its allowed values."""
        given = dict(inputs or {})
        values: dict[str, Any] = dict(given)
        missing: list[PropertySpec] = []
        for prop in self.definition.inputs:
            if prop.name not in given:
                if prop.has_default:
                    values[prop.name] = copy.deepcopy(prop.default)
                elif prop.required:
                    missing.append(prop)
                continue
            self._check_value(prop, given[prop.name])
        if missing:
            names = ", ".join(repr(p.name) for p in missing)
            plural = "s" if len(missing) > 1 else ""
            raise PromptyInputError(
                f"missing required input{plural} {names}; pass {'them' if plural else 'it'} "
                f"to render()",
                path=self.path,
                line=self._input_line(missing[0].name),
                field=f"inputs.{missing[0].name}",
            )
        return values

    def _check_value(self, prop: PropertySpec, value: object) -> None:
        if value is None:
            return
        strict_kinds = self.generation != "A" or prop.kind == "thread"
        if strict_kinds and not kind_accepts(prop.kind, value):
            raise PromptyInputError(
                f"the input {prop.name!r} must be {kind_words(prop.kind)}, "
                f"not {type(value).__name__}",
                path=self.path,
                line=self._input_line(prop.name),
                field=f"inputs.{prop.name}",
            )
        if prop.enum is not None and value not in prop.enum:
            allowed = ", ".join(repr(v) for v in prop.enum)
            raise PromptyInputError(
                f"the input {prop.name!r} is {value!r}, which is not one of {allowed}",
                path=self.path,
                line=self._input_line(prop.name),
                field=f"inputs.{prop.name}",
            )

    def _input_line(self, name: str) -> int | None:
        locator = self.document.locator
        for section in ("inputs", "inputSchema"):
            raw = self.document.front_matter.get(section)
            if section == "inputSchema" and isinstance(raw, Mapping):
                raw = raw.get("properties")
                prefix: tuple[str, ...] = ("inputSchema", "properties")
            else:
                prefix = (section,)
            if isinstance(raw, Mapping) and name in raw:
                return locator.line_of((*prefix, name))
            if isinstance(raw, list):
                for index, item in enumerate(raw):
                    if isinstance(item, Mapping) and item.get("name") == name:
                        return locator.line_of((*prefix, index))
        return locator.front_matter_line

    # --- rendering ----------------------------------------------------------------

    def render(self, inputs: Mapping[str, object] | None = None) -> list[Message]:
        """The messages for `inputs` (see the module docstring)."""
        values = self.resolve_inputs(inputs)
        threads: dict[str, list[Message]] = {}
        images: dict[str, ImagePart] = {}
        thread_input: str | None = None
        for prop in self.definition.inputs:
            if prop.kind == "thread" and prop.name in values:
                placeholder = f"PILOTHOUSE_THREAD_{secrets.token_hex(12)}"
                threads[placeholder] = thread_messages(values[prop.name], prop.name)
                values[prop.name] = placeholder
                thread_input = thread_input or placeholder
            elif prop.kind == "image" and values.get(prop.name) is not None:
                placeholder = f"PILOTHOUSE_IMAGE_{secrets.token_hex(12)}"
                images[placeholder] = image_part(values[prop.name], prop.name, self.base_dir)
                values[prop.name] = placeholder
        # `![thread]` (2024 runtime): the thread input's messages, else an input named
        # `thread`, else nothing.
        if thread_input is None and self._template.thread_marker:
            given = values.get("thread")
            placeholder = f"PILOTHOUSE_THREAD_{secrets.token_hex(12)}"
            threads[placeholder] = thread_messages(given, "thread") if is_sequence(given) else []
            thread_input = placeholder
        if thread_input is not None:
            values[THREAD_VARIABLE] = thread_input
        escapes: dict[str, str] = {}
        if self.generation == "A":
            values = {k: escape_roles(v, escapes) for k, v in values.items()}
        nonce = secrets.token_hex(16)
        text = self._template.render(values, nonce)
        if self._chat:
            segments = split_messages(text, roles=self._roles, nonce=nonce)
        else:  # completion, embedding, image: the whole text is the one input
            body = _trim_blank_lines(text)
            segments = [Segment("user", body)] if body else []
        messages: list[Message] = []
        thread_pattern = (
            re.compile("(" + "|".join(re.escape(p) for p in threads) + ")") if threads else None
        )
        for segment in segments:
            if escapes:
                segment = Segment(
                    segment.role,
                    unescape_roles(segment.text, escapes),
                    {k: unescape_roles(v, escapes) for k, v in segment.attributes.items()},
                )
            if thread_pattern is None:
                messages.append(segment_message(segment, base_dir=self.base_dir, images=images))
                continue
            for chunk in thread_pattern.split(segment.text):
                if chunk in threads:
                    messages.extend(threads[chunk])
                    continue
                trimmed = _trim_blank_lines(chunk)
                if trimmed:
                    piece = Segment(segment.role, trimmed, segment.attributes)
                    messages.append(segment_message(piece, base_dir=self.base_dir, images=images))
        return messages

    def dump(self) -> str:
        """The file text (front matter as written, references unresolved, and body)."""
        return self.document.dump()


# --- loading ------------------------------------------------------------------------


def load_prompty(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    generation: Generation | None = None,
    defer_connections: bool = False,
) -> Prompty:
    """Load the Prompty file at `path`. `environ` (default `os.environ`) resolves
    `${env:...}` references; `generation` overrides detection. An unset variable in a
    B or C connection is an error naming it, unless `defer_connections` keeps the
    connections' references for `ConnectionSpec.resolve` (a copilot that answers on its
    own model never uses the file's connection)."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise PromptyError(f"cannot read the Prompty file: {exc.strerror}", path=file) from None
    if size > MAX_PROMPTY_BYTES:
        raise PromptyError(
            f"the file is {size} bytes; a Prompty file may be at most {MAX_PROMPTY_BYTES}",
            path=file,
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PromptyError("the file is not UTF-8 text", path=file) from None
    except OSError as exc:
        raise PromptyError(f"cannot read the Prompty file: {exc.strerror}", path=file) from None
    return parse_prompty(
        text,
        file.parent,
        path=file,
        environ=environ,
        generation=generation,
        defer_connections=defer_connections,
    )


def parse_prompty(
    text: str,
    base_dir: str | Path,
    *,
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    generation: Generation | None = None,
    defer_connections: bool = False,
) -> Prompty:
    """A Prompty from its text. `base_dir` is the folder `${file:}` references and
    relative images are read from; `path` (optional) names the file in errors and gives
    the default name."""
    file = Path(path) if path is not None else None
    folder = Path(base_dir)
    document = PromptyDocument.parse(text, file)
    default_name = _stem(file) if file is not None else "prompt"
    definition = build_definition(
        document,
        base_dir=folder,
        environ=os.environ if environ is None else environ,
        name=default_name,
        generation=generation,
        defer_connections=defer_connections,
    )
    return Prompty(document, definition, path=file, base_dir=folder)


def dump_prompty(prompty: Prompty | PromptyDocument) -> str:
    """The file text of a Prompty or document; loading it gives an equal document and
    an equal definition."""
    document = prompty.document if isinstance(prompty, Prompty) else prompty
    return document.dump()


def variant_path(base_path: str | Path, family: str | None) -> Path:
    """The Prompty variant for a model family: for `instructions.prompty` and family
    `claude`, `instructions.claude.prompty` when that file exists, else the base path."""
    base = Path(base_path)
    if not family:
        return base
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", family):
        raise ValueError(
            f"model family {family!r} must be letters, digits, '-' or '_' (like 'claude')"
        )
    suffix = base.suffix or ".prompty"
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    for name in dict.fromkeys((family, family.lower())):
        candidate = base.with_name(f"{stem}.{name}{suffix}")
        if candidate.is_file():
            return candidate
    return base


def _stem(path: Path) -> str:
    return path.name[: -len(".prompty")] if path.name.endswith(".prompty") else path.stem


def _trim_blank_lines(text: str) -> str:
    lines = text.split("\n")
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])
