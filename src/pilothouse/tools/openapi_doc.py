"""OpenAPI documents: load (file or URL, through the safe client), validate, and
resolve `$ref`s into self-contained JSON Schemas a model can read.

Only local references (`#/components/...`) are followed. A document that points
elsewhere (`other.yaml#/...`, `https://...`) is refused before anything else reads
it: resolving remote references is how schema fetches bypassed SSRF guards in
other platforms. Bundle such documents first (e.g. `redocly bundle`).

Every error names the source and the JSON pointer of the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import referencing
import referencing.exceptions
import referencing.jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import validator_for
from openapi_spec_validator import (
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
    OpenAPIV32SpecValidator,
)
from openapi_spec_validator.schemas import schema_v30, schema_v31, schema_v32

from pilothouse.tools.errors import OpenAPIDocumentError, ToolError
from pilothouse.tools.http import SafeHttpClient
from pilothouse.util.urls import safe_url
from pilothouse.util.yaml_limits import load_yaml

_DOC_URI = "urn:pilothouse:openapi-document"
_DROP_KEYS = frozenset({"example", "examples", "xml", "externalDocs", "discriminator"})
MAX_INLINE_DEPTH = 8
"""How many `$ref`s deep schemas are inlined; deeper ones become a plain object."""


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass
class OpenAPIDocument:
    data: dict[str, Any]
    source: str
    version: str
    """`3.0`, `3.1` or `3.2`."""

    def __post_init__(self) -> None:
        resource = referencing.Resource.from_contents(
            self.data, default_specification=referencing.jsonschema.DRAFT202012
        )
        self._resolver = referencing.Registry().with_resource(_DOC_URI, resource).resolver(_DOC_URI)

    def lookup(self, ref: str, where: str) -> Any:
        """The value a local `$ref` points at."""
        if not ref.startswith("#"):
            raise OpenAPIDocumentError(
                f"$ref {ref!r} points outside the document; only local refs (#/...) are "
                "followed, so bundle the document into one file first",
                source=self.source,
                pointer=where,
            )
        try:
            return self._resolver.lookup(ref).contents
        except referencing.exceptions.Unresolvable:
            raise OpenAPIDocumentError(
                f"$ref {ref!r} does not resolve", source=self.source, pointer=where
            ) from None

    def deref(self, node: Any, where: str) -> Any:
        """`node` itself, or what its `$ref` points at (one level, chains followed)."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise OpenAPIDocumentError(
                    f"$ref {ref!r} refers to itself", source=self.source, pointer=where
                )
            seen.add(ref)
            node = self.lookup(ref, where)
        return node

    def schema(self, node: Any, where: str, *, for_request: bool) -> dict[str, Any]:
        """A self-contained JSON Schema (2020-12) from an OpenAPI schema object."""
        inlined = self._inline(node, where, ())
        converted = _to_json_schema(inlined, self.version, for_request=for_request)
        return converted if isinstance(converted, dict) else {}

    def _inline(self, node: Any, where: str, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self._inline(v, f"{where}/{i}", stack) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref in stack:
                return {"type": "object", "description": f"(a nested {name}, see above)"}
            if len(stack) >= MAX_INLINE_DEPTH:
                return {"type": "object", "description": f"(a {name})"}
            resolved = self._inline(self.lookup(ref, where), ref[1:], (*stack, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                resolved = {**resolved, **self._inline(siblings, where, stack)}
            return resolved
        return {
            k: self._inline(v, f"{where}/{escape_pointer(str(k))}", stack) for k, v in node.items()
        }


def _to_json_schema(node: Any, version: str, *, for_request: bool) -> Any:
    """OpenAPI schema dialect to plain JSON Schema: `nullable`, boolean exclusive
    bounds (3.0), read-only properties dropped from requests, noise removed."""
    if isinstance(node, list):
        return [_to_json_schema(v, version, for_request=for_request) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or (isinstance(key, str) and key.startswith("x-")):
            continue
        if key == "properties" and isinstance(value, dict):
            props = {}
            for name, sub in value.items():
                if for_request and isinstance(sub, dict) and sub.get("readOnly") is True:
                    continue
                props[name] = _to_json_schema(sub, version, for_request=for_request)
            out[key] = props
        elif key in ("nullable", "readOnly", "writeOnly"):
            continue
        else:
            out[key] = _to_json_schema(value, version, for_request=for_request)
    if "required" in out and isinstance(out.get("properties"), dict) and for_request:
        out["required"] = [r for r in out["required"] if r in out["properties"]]
        if not out["required"]:
            del out["required"]
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            if out[bound] and limit in out:
                out[bound] = out.pop(limit)
            else:
                del out[bound]
    return out


def parse_document(text: str | bytes, source: str) -> OpenAPIDocument:
    """Parse (JSON or YAML), check the version, refuse non-local refs, validate."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise OpenAPIDocumentError(
            f"not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}", source=source
        ) from None
    if not isinstance(data, dict):
        raise OpenAPIDocumentError("the document is not a mapping", source=source)
    raw_version = str(data.get("openapi") or "")
    if not raw_version and data.get("swagger"):
        raise OpenAPIDocumentError(
            f"this is Swagger {data['swagger']}; convert it to OpenAPI 3 first",
            source=source,
            pointer="/swagger",
        )
    version = raw_version[:3]
    validators = _VALIDATORS
    if version not in validators:
        raise OpenAPIDocumentError(
            f"unsupported openapi version {raw_version or '(missing)'!r}; use 3.0, 3.1 or 3.2",
            source=source,
            pointer="/openapi",
        )
    _refuse_remote_refs(data, source, "")
    validator = validators[version](data)
    try:
        error = next(iter(validator.iter_errors()), None)
    except referencing.exceptions.Unresolvable as exc:
        ref = str(getattr(exc, "ref", "") or exc)
        ref = ref if ref.startswith("#") or "://" in ref else f"#{ref}"
        raise OpenAPIDocumentError(
            f"$ref {ref!r} does not resolve", source=source, pointer=_find_ref(data, ref, "")
        ) from None
    if error is not None:
        pointer, message = _explain(error)
        message = message if len(message) < 600 else message[:600] + "…"
        raise OpenAPIDocumentError(message, source=source, pointer=pointer)
    return OpenAPIDocument(data=data, source=source, version=version)


def _with_jsonschema(base: type[Any], meta_schema: Any) -> type[Any]:
    """`base` validating with the `jsonschema` library. openapi-spec-validator switches
    to jsonschema-rs when that is installed (schemathesis brings it), whose errors
    lack the branch details `_explain` turns into JSON-pointer messages."""
    schema = dict(meta_schema)
    return type(base.__name__, (base,), {"schema_validator": validator_for(schema)(schema)})


_VALIDATORS: dict[str, type[Any]] = {
    "3.0": _with_jsonschema(OpenAPIV30SpecValidator, schema_v30),
    "3.1": _with_jsonschema(OpenAPIV31SpecValidator, schema_v31),
    "3.2": _with_jsonschema(OpenAPIV32SpecValidator, schema_v32),
}


def _explain(error: ValidationError) -> tuple[str, str]:
    """(pointer, message) for a validation error. For a oneOf/anyOf failure, look into
    the branches (leaving out the `$ref` alternative when the object has no `$ref`):
    one branch left gives its own error; several give each branch's first problem."""
    for _ in range(10):
        if not error.context:
            break
        candidates = list(error.context)
        instance = error.instance
        if isinstance(instance, dict) and "$ref" not in instance:
            # jsonschema quotes names as 'x' in older releases and "x" in newer ones
            ref_branches = {
                e.schema_path[0]
                for e in candidates
                if "'$ref'" in e.message or '"$ref"' in e.message
            }
            candidates = [e for e in candidates if e.schema_path[0] not in ref_branches] or (
                candidates
            )
        branches: dict[Any, ValidationError] = {}
        for candidate in candidates:
            branches.setdefault(candidate.schema_path[0], candidate)
        if len(branches) > 1:
            listed = "; ".join(
                f"{_pointer(e.absolute_path, error.absolute_path)}{e.message}"
                for e in list(branches.values())[:4]
            )
            return _pointer(error.absolute_path), f"matches none of the allowed forms ({listed})"
        error = best_match(candidates) or error
    return _pointer(error.absolute_path), error.message


def _pointer(path: Any, relative_to: Any = None) -> str:
    parts = [escape_pointer(str(p)) for p in path]
    if relative_to is not None:
        parts = parts[len(list(relative_to)) :]
        return f"{'/'.join(parts)}: " if parts else ""
    return "/" + "/".join(parts)


def _find_ref(node: Any, ref: str, where: str) -> str:
    """The pointer of the first `$ref` equal to `ref` ("" when there is none)."""
    if isinstance(node, dict):
        if node.get("$ref") == ref:
            return f"{where}/$ref"
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return ""
    for key, value in items:
        found = _find_ref(value, ref, f"{where}/{escape_pointer(str(key))}")
        if found:
            return found
    return ""


def _refuse_remote_refs(node: Any, source: str, where: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise OpenAPIDocumentError(
                f"$ref {ref!r} points outside the document; only local refs (#/...) are "
                "followed, so bundle the document into one file first",
                source=source,
                pointer=f"{where}/$ref",
            )
        for key, value in node.items():
            _refuse_remote_refs(value, source, f"{where}/{escape_pointer(str(key))}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_remote_refs(value, source, f"{where}/{i}")


async def load_document(
    source: str, *, base_dir: Path, client: SafeHttpClient, max_bytes: int = 20_000_000
) -> OpenAPIDocument:
    """Read a document from a URL (through the safe client) or a file under
    `base_dir`."""
    if source.startswith(("http://", "https://")):
        response = await client.request(
            "GET",
            source,
            headers={"Accept": "application/json, application/yaml"},
            max_bytes=max_bytes,
        )
        shown = safe_url(source)
        if response.status >= 400:
            raise ToolError(f"cannot fetch the OpenAPI document {shown}: HTTP {response.status}")
        return parse_document(response.content, shown)
    path = Path(source)
    if not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise OpenAPIDocumentError(
            f"cannot read the file: {exc.strerror}", source=str(path)
        ) from None
    return parse_document(text, str(path))
