"""ServiceNow Table API: query, get, create and update records of any table (incident
by default), and search knowledge articles (the `kb_knowledge` table).

Wire format (ServiceNow REST API reference, Table API):
- `GET /api/now/table/{table}?sysparm_query=...&sysparm_limit=...&sysparm_offset=...
  &sysparm_fields=...&sysparm_display_value=true` answering `{"result": [...]}` with a
  `Link` header (`rel="next"`) and `X-Total-Count`;
- `GET|PATCH /api/now/table/{table}/{sys_id}`, `POST /api/now/table/{table}`;
- errors: `{"error": {"message": ..., "detail": ...}, "status": "failure"}`;
- auth: basic (user/password) or a bearer OAuth token.

Which tables the copilot may touch can be limited with the `tables` option.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx

from pilothouse.tools.base import Tool
from pilothouse.tools.connectors.base import (
    ApiClient,
    ConnectorTool,
    integer,
    obj,
    path_segment,
    string,
)
from pilothouse.tools.errors import ToolArgumentsError
from pilothouse.tools.http import HttpResponse

KB_FIELDS = "sys_id,number,short_description,text,kb_category,sys_updated_on"
_TAG = re.compile(r"<[^>]+>")


def servicenow_detail(response: HttpResponse) -> str:
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        detail = str(error.get("detail") or "")
        return f"{message}: {detail}" if detail and detail != message else message
    return response.text.strip()[:300]


def escape_query_value(value: str) -> str:
    """A value for an encoded query: `^` separates conditions, so it is doubled."""
    return value.replace("^", "^^")


def next_offset(link_header: str | None) -> int | None:
    """The sysparm_offset of the `rel="next"` link, if any."""
    for part in (link_header or "").split(","):
        if 'rel="next"' in part:
            match = re.search(r"<([^>]+)>", part)
            if match:
                offset = httpx.URL(match.group(1)).params.get("sysparm_offset")
                if offset is not None and offset.isdigit():
                    return int(offset)
    return None


class ServiceNow:
    def __init__(self, api: ApiClient, *, tables: list[str] | None, budget: int):
        self.api = api
        self.tables = tables
        self.budget = budget

    def _table(self, args: dict[str, Any]) -> str:
        table = str(args.get("table") or "incident")
        if self.tables is not None and table not in self.tables:
            raise ToolArgumentsError(
                f"table {table!r} is not available to this copilot; use one of "
                f"{', '.join(self.tables)}"
            )
        return path_segment(table, "table")

    async def query(self, args: dict[str, Any]) -> Any:
        table = self._table(args)
        params: dict[str, Any] = {
            "sysparm_query": args.get("query", ""),
            "sysparm_limit": int(args.get("limit", 20)),
            "sysparm_offset": int(args.get("offset", 0)),
            "sysparm_display_value": "true",
            "sysparm_exclude_reference_link": "true",
        }
        if args.get("fields"):
            params["sysparm_fields"] = ",".join(args["fields"])
        response = await self.api.request("GET", f"/api/now/table/{table}", params=params)
        records = (response.json() or {}).get("result") or []
        result: dict[str, Any] = {"table": table, "records": records, "count": len(records)}
        total = response.headers.get("x-total-count")
        if total and total.isdigit():
            result["total"] = int(total)
        following = next_offset(response.headers.get("link"))
        if following is not None:
            result["next_offset"] = following
            result["note"] = "more records match; call again with offset=next_offset"
        return result

    async def get(self, args: dict[str, Any]) -> Any:
        table = self._table(args)
        sys_id = path_segment(args["sys_id"], "sys_id")
        params: dict[str, Any] = {
            "sysparm_display_value": "true",
            "sysparm_exclude_reference_link": "true",
        }
        if args.get("fields"):
            params["sysparm_fields"] = ",".join(args["fields"])
        data = await self.api.json("GET", f"/api/now/table/{table}/{sys_id}", params=params)
        return data.get("result")

    async def create(self, args: dict[str, Any]) -> Any:
        table = self._table(args)
        data = await self.api.json(
            "POST",
            f"/api/now/table/{table}",
            json_body=args["fields"],
            params={"sysparm_display_value": "true", "sysparm_exclude_reference_link": "true"},
        )
        record = data.get("result") or {}
        return {
            "table": table,
            "sys_id": record.get("sys_id"),
            "number": record.get("number"),
            "record": record,
        }

    async def update(self, args: dict[str, Any]) -> Any:
        table = self._table(args)
        sys_id = path_segment(args["sys_id"], "sys_id")
        data = await self.api.json(
            "PATCH",
            f"/api/now/table/{table}/{sys_id}",
            json_body=args["fields"],
            params={"sysparm_display_value": "true", "sysparm_exclude_reference_link": "true"},
        )
        return {"table": table, "sys_id": sys_id, "record": data.get("result")}

    async def search_knowledge(self, args: dict[str, Any]) -> Any:
        text = escape_query_value(str(args["query"]).strip())
        query = f"workflow_state=published^short_descriptionLIKE{text}^ORtextLIKE{text}"
        data = await self.api.json(
            "GET",
            "/api/now/table/kb_knowledge",
            params={
                "sysparm_query": query,
                "sysparm_limit": int(args.get("limit", 5)),
                "sysparm_fields": KB_FIELDS,
                "sysparm_display_value": "true",
                "sysparm_exclude_reference_link": "true",
            },
        )
        articles = []
        for row in data.get("result") or []:
            body = html.unescape(_TAG.sub(" ", str(row.get("text") or "")))
            body = re.sub(r"\s+", " ", body).strip()
            articles.append(
                {
                    "number": row.get("number"),
                    "title": row.get("short_description"),
                    "sys_id": row.get("sys_id"),
                    "excerpt": body[:800] + ("…" if len(body) > 800 else ""),
                    "updated": row.get("sys_updated_on"),
                }
            )
        return {"articles": articles, "count": len(articles)}

    def tools(self) -> list[Tool]:
        table: dict[str, Any] = string(
            "The table, e.g. incident, problem, change_request, sc_req_item.", default="incident"
        )
        if self.tables is not None:
            table["enum"] = self.tables
        fields = {
            "type": "array",
            "items": {"type": "string"},
            "description": "Only these fields (e.g. number, short_description, state).",
        }
        values = {
            "type": "object",
            "description": "Field names and values, e.g. "
            '{"short_description": "VPN down", "urgency": "1"}.',
        }
        sys_id = string("The record's sys_id (32 hex characters).")
        b = self.budget
        return [
            ConnectorTool(
                "servicenow_query_records",
                "Query ServiceNow records with an encoded query: conditions joined by ^ (AND) "
                "or ^OR, e.g. `active=true^priority=1` for open P1 incidents, "
                "`assigned_to=javascript:gs.getUserID()`, `short_descriptionLIKEvpn`, "
                "`ORDERBYDESCsys_created_on`. Values are display values.",
                obj(
                    {
                        "table": table,
                        "query": string("The encoded query."),
                        "fields": fields,
                        "limit": integer("How many records.", 20, 1, 100),
                        "offset": integer("Skip this many (for the next page).", 0, 0, 100000),
                    }
                ),
                self.query,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "servicenow_get_record",
                "Get one ServiceNow record by sys_id.",
                obj({"table": table, "sys_id": sys_id, "fields": fields}, ["sys_id"]),
                self.get,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "servicenow_create_record",
                "Create a ServiceNow record, e.g. an incident with short_description, "
                "description, urgency and impact. Needs approval.",
                obj({"table": table, "fields": values}, ["fields"]),
                self.create,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "servicenow_update_record",
                "Update fields of a ServiceNow record (e.g. state, work_notes, assigned_to). "
                "Needs approval.",
                obj({"table": table, "sys_id": sys_id, "fields": values}, ["sys_id", "fields"]),
                self.update,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "servicenow_search_knowledge",
                "Search published ServiceNow knowledge articles by words in their title or text.",
                obj(
                    {
                        "query": string("Words to search for."),
                        "limit": integer("How many articles.", 5, 1, 20),
                    },
                    ["query"],
                ),
                self.search_knowledge,
                read_only=True,
                result_budget=b,
            ),
        ]
