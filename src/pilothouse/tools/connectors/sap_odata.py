"""SAP OData services (v2 and v4): the service's `$metadata` (EDMX) is read and each
entity set becomes two read-only tools: `sap_query_<Set>` ($filter, $select, $top,
$skip, $orderby) and `sap_get_<Set>` (by key).

Wire format:
- v2 (SAP Gateway): EDMX 1.0, JSON with `$format=json`, collections as
  `{"d": {"results": [...], "__count": "..", "__next": ".."}}`, entities as
  `{"d": {...}}` with `__metadata`; errors `{"error": {"code", "message": {"value"}}}`;
  key literals typed (`'text'`, `guid'..'`, `datetime'..'`, `12L`, `1.5M`);
- v4 (RAP / SAP Gateway v4): EDMX 4.0, `{"value": [...], "@odata.count": n,
  "@odata.nextLink": ".."}`, entities as plain objects; errors
  `{"error": {"code", "message"}}`; key literals `'text'` or bare.
The metadata is parsed with defusedxml (no entities, no external references).
Writes (which need an X-CSRF-Token round trip) are not offered yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pilothouse.tools.base import Tool, safe_tool_name
from pilothouse.tools.connectors.base import ApiClient, ConnectorTool, integer, obj, string
from pilothouse.tools.errors import ToolArgumentsError, ToolConfigError
from pilothouse.tools.http import Credential, HttpResponse, SafeHttpClient

_INTEGER = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}
_NUMBER = {"Edm.Decimal", "Edm.Double", "Edm.Single"}


@dataclass
class Property:
    name: str
    type: str
    label: str = ""

    def schema(self) -> dict[str, Any]:
        text = f"{self.label} ({self.type})" if self.label else self.type
        if self.type in _INTEGER:
            return {"type": "integer", "description": text}
        if self.type in _NUMBER:
            return {"type": "number", "description": text}
        if self.type == "Edm.Boolean":
            return {"type": "boolean", "description": text}
        return {"type": "string", "description": text}


@dataclass
class EntitySet:
    name: str
    entity_type: str
    keys: list[Property]
    properties: list[Property] = field(default_factory=list)


@dataclass
class ServiceMetadata:
    version: int  # 2 or 4
    entity_sets: list[EntitySet]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _label(element: Any) -> str:
    for key, value in element.attrib.items():
        if _local(key) == "label":
            return str(value)
    for child in element:
        if _local(child.tag) == "Annotation" and str(child.get("Term", "")).endswith("Label"):
            return str(child.get("String", ""))
    return ""


def parse_metadata(xml: bytes, source: str) -> ServiceMetadata:
    """Entity sets, keys and properties from an EDMX document (v2 or v4)."""
    try:
        root = SafeET.fromstring(xml)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise ToolConfigError(f"SAP metadata at {source} is not valid EDMX: {exc}") from None
    if _local(root.tag) != "Edmx":
        raise ToolConfigError(f"SAP metadata at {source}: the root element is not edmx:Edmx")
    version = 4 if str(root.get("Version", "")).startswith("4") else 2
    types: dict[str, tuple[list[str], list[Property]]] = {}
    sets: list[tuple[str, str]] = []
    for schema in root.iter():
        if _local(schema.tag) != "Schema":
            continue
        namespace = schema.get("Namespace", "")
        alias = schema.get("Alias")
        for element in schema:
            kind = _local(element.tag)
            if kind == "EntityType":
                keys = [
                    str(ref.get("Name"))
                    for key in element
                    if _local(key.tag) == "Key"
                    for ref in key
                    if _local(ref.tag) == "PropertyRef"
                ]
                props = [
                    Property(str(p.get("Name")), str(p.get("Type", "Edm.String")), _label(p))
                    for p in element
                    if _local(p.tag) == "Property"
                ]
                for prefix in filter(None, (namespace, alias)):
                    types[f"{prefix}.{element.get('Name')}"] = (keys, props)
            elif kind == "EntityContainer":
                sets += [
                    (str(s.get("Name")), str(s.get("EntityType")))
                    for s in element
                    if _local(s.tag) == "EntitySet"
                ]
    result = []
    for name, type_name in sets:
        if type_name not in types:
            raise ToolConfigError(
                f"SAP metadata at {source}: entity set {name} has unknown type {type_name}"
            )
        keys, props = types[type_name]
        by_name = {p.name: p for p in props}
        result.append(
            EntitySet(
                name=name,
                entity_type=type_name.rsplit(".", 1)[-1],
                keys=[by_name.get(k, Property(k, "Edm.String")) for k in keys],
                properties=props,
            )
        )
    if not result:
        raise ToolConfigError(f"SAP metadata at {source} declares no entity sets")
    return ServiceMetadata(version=version, entity_sets=result)


def key_literal(prop: Property, value: Any, version: int) -> str:
    """A key value written as an OData literal."""
    kind = prop.type
    if kind in _INTEGER or kind in _NUMBER:
        try:
            number = int(value) if kind in _INTEGER else float(value)
        except (TypeError, ValueError):
            raise ToolArgumentsError(f"key {prop.name} must be a number") from None
        suffix = {"Edm.Int64": "L", "Edm.Decimal": "M", "Edm.Double": "d"}.get(kind, "")
        return f"{number}{suffix if version == 2 else ''}"
    if kind == "Edm.Boolean":
        return "true" if value in (True, "true") else "false"
    text = str(value)
    if kind == "Edm.Guid":
        return f"guid'{text}'" if version == 2 else text
    if kind in ("Edm.DateTime", "Edm.DateTimeOffset") and version == 2:
        return f"{kind[4:].lower()}'{text}'"
    if kind in ("Edm.Date", "Edm.DateTimeOffset") and version == 4:
        return text
    return "'" + text.replace("'", "''") + "'"


def sap_detail(response: HttpResponse) -> str:
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            message = message.get("value")
        code = error.get("code")
        return f"{message} ({code})" if code else str(message)
    return response.text.strip()[:300]


def _clean(entity: Any) -> Any:
    if not isinstance(entity, dict):
        return entity
    return {
        k: v
        for k, v in entity.items()
        if k != "__metadata"
        and not k.startswith("@odata")
        and not (isinstance(v, dict) and "__deferred" in v)
    }


class SapService:
    def __init__(self, api: ApiClient, metadata: ServiceMetadata, *, budget: int):
        self.api = api
        self.meta = metadata
        self.budget = budget

    def _format(self) -> dict[str, str]:
        return {"$format": "json"} if self.meta.version == 2 else {}

    async def query(self, entity_set: EntitySet, args: dict[str, Any]) -> Any:
        top = int(args.get("top", 20))
        skip = int(args.get("skip", 0))
        params: dict[str, Any] = {"$top": top, "$skip": skip, **self._format()}
        if self.meta.version == 2:
            params["$inlinecount"] = "allpages"
        else:
            params["$count"] = "true"
        for arg, name in (("filter", "$filter"), ("orderby", "$orderby")):
            if args.get(arg):
                params[name] = args[arg]
        if args.get("select"):
            params["$select"] = ",".join(args["select"])
        data = await self.api.json("GET", f"/{quote(entity_set.name)}", params=params)
        if self.meta.version == 2:
            body = (data or {}).get("d")
            rows = body.get("results", []) if isinstance(body, dict) else body or []
            total = body.get("__count") if isinstance(body, dict) else None
            more = bool(isinstance(body, dict) and body.get("__next"))
        else:
            rows = (data or {}).get("value") or []
            total = (data or {}).get("@odata.count")
            more = bool((data or {}).get("@odata.nextLink"))
        results = [_clean(r) for r in rows]
        out: dict[str, Any] = {
            "entity_set": entity_set.name,
            "results": results,
            "count": len(results),
        }
        if total is not None:
            out["total"] = int(total)
        if more or (total is not None and skip + len(results) < int(total)):
            out["next_skip"] = skip + len(results)
        return out

    async def get(self, entity_set: EntitySet, args: dict[str, Any]) -> Any:
        literals = [key_literal(k, args[k.name], self.meta.version) for k in entity_set.keys]
        if len(entity_set.keys) == 1:
            predicate = literals[0]
        else:
            predicate = ",".join(
                f"{k.name}={v}" for k, v in zip(entity_set.keys, literals, strict=True)
            )
        path = f"/{quote(entity_set.name)}({quote(predicate, safe=chr(39) + ',=:')})"
        params: dict[str, Any] = dict(self._format())
        if args.get("select"):
            params["$select"] = ",".join(args["select"])
        data = await self.api.json("GET", path, params=params)
        return _clean(data.get("d", data) if self.meta.version == 2 else data)

    def tools(self, only: list[str] | None) -> list[Tool]:
        sets = self.meta.entity_sets
        if only is not None:
            known = {s.name for s in sets}
            missing = sorted(set(only) - known)
            if missing:
                raise ToolConfigError(
                    f"SAP service has no entity set {', '.join(missing)} (it has: "
                    f"{', '.join(sorted(known))})"
                )
            sets = [s for s in sets if s.name in only]
        tools: list[Tool] = []
        for entity_set in sets:
            tools += self._tools_for(entity_set)
        return tools

    def _tools_for(self, es: EntitySet) -> list[Tool]:
        names = [p.name for p in es.properties]
        shown = ", ".join(f"{p.name} ({p.label})" if p.label else p.name for p in es.properties)
        if len(shown) > 700:
            shown = shown[:700] + ", …"
        select = {
            "type": "array",
            "items": {"type": "string", "enum": names},
            "description": "Only these properties.",
        }
        query_schema = obj(
            {
                "filter": string("OData $filter, e.g. `Status eq 'OPEN' and NetAmount gt 1000`."),
                "select": select,
                "orderby": string("OData $orderby, e.g. `CreatedAt desc`."),
                "top": integer("How many entries.", 20, 1, 100),
                "skip": integer("Skip this many (for the next page).", 0, 0, 1_000_000),
            }
        )
        key_schema = obj(
            {**{k.name: k.schema() for k in es.keys}, "select": select}, [k.name for k in es.keys]
        )

        async def run_query(args: dict[str, Any]) -> Any:
            return await self.query(es, args)

        async def run_get(args: dict[str, Any]) -> Any:
            return await self.get(es, args)

        base = safe_tool_name(es.name)[:50]
        return [
            ConnectorTool(
                f"sap_query_{base}",
                f"Query SAP {es.name} ({es.entity_type}). Properties: {shown}.",
                query_schema,
                run_query,
                read_only=True,
                result_budget=self.budget,
            ),
            ConnectorTool(
                f"sap_get_{base}",
                f"Get one SAP {es.entity_type} from {es.name} by its key "
                f"({', '.join(k.name for k in es.keys)}).",
                key_schema,
                run_get,
                read_only=True,
                result_budget=self.budget,
            ),
        ]


async def load_sap_tools(
    service_url: str,
    *,
    client: SafeHttpClient,
    credential: Credential | None,
    entity_sets: list[str] | None,
    sap_client: str | None,
    budget: int,
    max_retry_wait_s: float,
) -> list[Tool]:
    """Read the service's $metadata and build its tools."""
    api = ApiClient(
        service="SAP",
        base_url=service_url,
        client=client,
        credential=credential,
        detail=sap_detail,
        default_params={"sap-client": sap_client} if sap_client else None,
        max_retry_wait_s=max_retry_wait_s,
    )
    response = await api.request("GET", "/$metadata", headers={"Accept": "application/xml"})
    metadata = parse_metadata(response.content, f"{api.base_url}/$metadata")
    return SapService(api, metadata, budget=budget).tools(entity_sets)
