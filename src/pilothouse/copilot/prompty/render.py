"""Render a Prompty template: sandboxed Jinja2 or Mustache, with nonce-marked roles.

Before compiling, every role marker line of the TEMPLATE (`system:`, `# user:`,
`assistant[name="x"]:`) is rewritten to carry a nonce attribute whose value is a
template variable; each render sets that variable to a fresh random value. After
rendering, only marker lines carrying that render's nonce are message boundaries
(`parse.split_messages`), so a role marker that arrives inside an input value, with or
without a made-up nonce, stays literal text.

Jinja2 templates may also write a marker whose role comes from data, alone on a line:
`{{ item.role }}:` inside a loop over a chat history (Prompt flow's own examples do
this). Such a line becomes a boundary only when the value is exactly a role name;
anything else renders as the literal text it always was.

Jinja2 runs in `ImmutableSandboxedEnvironment` (no access to `_`-prefixed attributes,
no mutation of lists and dicts, no autoescape). Whitespace follows the generation's own
runtime: generation A renders as Prompt flow did (`trim_blocks`, trailing newline
kept), B and C as the v2 rule says (no `trim_blocks`/`lstrip_blocks`). `{% extends %}`,
`{% include %}` and `{% import %}` read templates from the Prompty's folder only (the
`${file:}` rules: no absolute paths, no `..`, no links leading out); their role markers
are nonce-marked like the file's own. An unsafe attribute access raises instead of
rendering as empty. Mustache (pystache) gets plain data only, so it never reaches an
attribute of a Python object, and partials are refused.

A line `![thread]` (the 2024 Prompty runtime's thread marker) becomes the thread
variable `THREAD_VARIABLE`: the conversation is expanded into messages there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import jinja2
import pystache
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .definition import TemplateFormat
from .document import PromptyDocument
from .errors import PromptyError, PromptyReferenceError, PromptyRenderError
from .references import safe_path

NONCE_VARIABLE = "__pilothouse_nonce"
THREAD_VARIABLE = "__pilothouse_thread"
_ROLE_FILTER = "pilothouse_role_marker"
_THREAD_LINE = re.compile(r"^[ \t]*!\[thread\][ \t]*$", re.IGNORECASE)

ROLES_A = ("system", "user", "assistant", "developer", "function", "tool")
ROLES_BC = ("system", "user", "assistant", "developer")


def marker_pattern(roles: Sequence[str]) -> re.Pattern[str]:
    """A role marker alone on a line: optional `#`, the role (any case), optional
    `[attributes]`, a colon."""
    names = "|".join(roles)
    return re.compile(
        r"^[ \t]*#?[ \t]*(?P<role>" + names + r")[ \t]*(?:\[(?P<attrs>[^\]\n]*)\])?[ \t]*:[ \t]*$",
        re.IGNORECASE,
    )


_ATTRIBUTE = re.compile(r"(?P<key>\w+)\s*=\s*(?:\"(?P<quoted>[^\"]*)\"|(?P<bare>[^,\s\]]*))")


def parse_attributes(text: str | None) -> dict[str, str]:
    """`name="Alice", nonce=abc` -> `{"name": "Alice", "nonce": "abc"}`."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text):
        out[match["key"]] = (
            match["quoted"] if match["quoted"] is not None else (match["bare"] or "")
        )
    return out


def _format_attributes(attrs: Mapping[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in attrs.items())


_DYNAMIC_MARKER = re.compile(
    r"^(?P<prefix>[ \t]*#?[ \t]*)\{\{(?P<lws>-?)(?P<expr>(?:(?!\}\}).)+?)(?P<rws>-?)\}\}"
    r"[ \t]*:[ \t]*$"
)


def mark_roles(template: str, roles: Sequence[str], fmt: TemplateFormat) -> str:
    """Rewrite each role marker line of `template` to carry the per-render nonce.

    Line count is preserved, so template line numbers stay file line numbers."""
    static = marker_pattern(roles)
    nonce_ref = "{{" + NONCE_VARIABLE + "}}"
    out: list[str] = []
    for line in template.split("\n"):
        if _THREAD_LINE.match(line):
            out.append(
                "{{{" + THREAD_VARIABLE + "}}}"
                if fmt == "mustache"
                else "{{" + THREAD_VARIABLE + "}}"
            )
            continue
        match = static.match(line)
        if match is not None:
            attrs = parse_attributes(match["attrs"])
            attrs.pop("nonce", None)  # a nonce written in the file proves nothing
            # The nonce goes first: text an input renders into a later attribute can
            # then never carry the nonce onto a line of its own.
            inner = f"nonce={nonce_ref}"
            if attrs:
                inner += ", " + _format_attributes(attrs)
            out.append(f"{match['role'].lower()}[{inner}]:")
            continue
        dynamic = _DYNAMIC_MARKER.match(line) if fmt == "jinja2" else None
        if dynamic is not None:
            expr = dynamic["expr"].strip()
            prefix = dynamic["prefix"]
            out.append(
                "{{"
                + dynamic["lws"]
                + f" ({expr}) | {_ROLE_FILTER}({NONCE_VARIABLE}, '{prefix}') "
                + dynamic["rws"]
                + "}}"
            )
            continue
        out.append(line)
    return "\n".join(out)


class _Sandbox(ImmutableSandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__} value is not allowed"
        )


class _FolderLoader(jinja2.BaseLoader):
    """Templates for `{% extends %}`, `{% include %}` and `{% import %}`: files in the
    Prompty's folder only (`safe_path`), role markers nonce-marked, a `.prompty` file
    used for its body."""

    def __init__(self, folder: Path, roles: Sequence[str], mark: bool) -> None:
        self.folder = folder
        self.roles = tuple(roles)
        self.mark = mark

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        try:
            path = safe_path(template, self.folder)
            text = path.read_text(encoding="utf-8")
        except PromptyReferenceError as exc:
            raise jinja2.TemplateNotFound(f"{template} ({exc.detail})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise jinja2.TemplateNotFound(f"{template} (cannot read it: {exc})") from None
        if path.suffix == ".prompty":
            text = body_of(text, path)
        source = mark_roles(text, self.roles, "jinja2") if self.mark else text
        return source, None, lambda: True


class CompiledTemplate:
    """A template ready to render many times."""

    def __init__(
        self,
        source: str,
        *,
        fmt: TemplateFormat,
        roles: Sequence[str],
        path: Path | None,
        first_line: int,
        mark: bool = True,
        trim_blocks: bool = False,
        folder: Path | None = None,
    ) -> None:
        self.format = fmt
        self.roles = tuple(roles)
        self._path = path
        self._first_line = first_line
        self.source = mark_roles(source, roles, fmt) if mark else source
        self.thread_marker = any(_THREAD_LINE.match(line) for line in source.split("\n"))
        """The template has a `![thread]` line."""
        self._jinja: jinja2.Template | None = None
        self._mustache: Any = None
        if fmt == "jinja2":
            env = _Sandbox(
                autoescape=False,
                trim_blocks=trim_blocks,
                lstrip_blocks=False,
                keep_trailing_newline=trim_blocks,
                undefined=jinja2.Undefined,
                loader=None if folder is None else _FolderLoader(folder, roles, mark),
            )
            env.filters[_ROLE_FILTER] = self._role_marker
            try:
                self._jinja = env.from_string(self.source)
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(f"template syntax error: {exc.message}", exc.lineno) from None
        else:
            try:
                _check_sections(self.source)
                self._mustache = pystache.parse(self.source)
            except Exception as exc:  # pystache raises plain ParsingError/ValueError
                raise self._error(f"Mustache syntax error: {exc}", None) from None

    def _role_marker(self, value: Any, nonce: str, prefix: str) -> str:
        text = "" if isinstance(value, jinja2.Undefined) else str(value)
        role = text.strip().lower()
        if role in self.roles:
            return f"{role}[nonce={nonce}]:"
        return f"{prefix}{text}:"

    def _error(self, message: str, template_line: int | None) -> PromptyRenderError:
        line = None if template_line is None else self._first_line + template_line - 1
        return PromptyRenderError(message, path=self._path, line=line, field="template")

    def render(self, context: Mapping[str, Any], nonce: str) -> str:
        values = {**context, NONCE_VARIABLE: nonce}
        if self._jinja is not None:
            try:
                return self._jinja.render(values)
            except SecurityError as exc:
                raise self._error(
                    f"the template tried something the sandbox forbids: {exc}",
                    _template_line(exc.__traceback__),
                ) from None
            except PromptyError:
                raise
            except jinja2.TemplateError as exc:
                raise self._error(
                    f"the template failed: {exc}", _template_line(exc.__traceback__)
                ) from None
            except Exception as exc:
                raise self._error(
                    f"the template failed: {type(exc).__name__}: {exc}",
                    _template_line(exc.__traceback__),
                ) from None
        renderer = pystache.Renderer(
            missing_tags="ignore", partials=_NoPartials(self), escape=mustache_escape
        )
        try:
            return str(renderer.render(self._mustache, plain_data(values)))
        except PromptyError:
            raise
        except Exception as exc:
            raise self._error(f"the Mustache template failed: {exc}", None) from None


class _NoPartials:
    def __init__(self, owner: CompiledTemplate) -> None:
        self._owner = owner

    def get(self, name: str) -> NoReturn:
        raise self._owner._error(
            f"Mustache partials ({{{{> {name}}}}}) are not supported in Prompty files", None
        )


_SECTION_TAG = re.compile(r"\{\{\s*([#^/=])\s*([^}]*?)\s*\}\}")


def _check_sections(source: str) -> None:
    """Refuse what pystache would silently get wrong: a section never closed (it drops
    text) and custom delimiters (the nonce tags use the standard ones)."""
    stack: list[str] = []
    for match in _SECTION_TAG.finditer(source):
        kind, name = match.group(1), match.group(2)
        if kind == "=":
            raise ValueError(
                "custom delimiters ({{=...=}}) are not supported in Prompty files: role "
                "markers carry their nonce in standard {{...}} tags"
            )
        if kind in "#^":
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise ValueError(f"{{{{/{name}}}}} closes a section that is not open")
    if stack:
        raise ValueError(f"the section {{{{#{stack[-1]}}}}} is never closed")


def mustache_escape(text: str) -> str:
    """`{{value}}` escaping as Prompty's Mustache runtime (chevron) does it: `&`, `<`,
    `>` and `"` only. `{{{value}}}` and `{{& value}}` insert the text unescaped."""
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def plain_data(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-like data (dict, list, str, numbers, bools, None); anything else
    becomes its text. Mustache gets only this, so it never reaches a Python attribute."""
    if depth > 64:
        raise PromptyRenderError("an input is nested more than 64 levels deep")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain_data(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v, depth + 1) for v in value]
    return str(value)


def body_of(text: str, path: Path) -> str:
    """The template body of a Prompty file's text (its front matter left out)."""
    return PromptyDocument.parse(text, path).body
