"""A strict local ServiceNow Table API: basic or bearer auth, encoded queries (a
subset: field=value, field!=value, fieldLIKEtext, ^ and ^OR), sysparm paging with
Link and X-Total-Count headers, and ServiceNow's error body."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.tools.fakes.common import FakeBase, basic_user

USER = "copilot.integration"
PASSWORD = "sn-password-9"
BEARER = "sn-oauth-token"
TABLES = {"incident", "kb_knowledge", "problem", "sys_user"}
_COND = re.compile(r"^(\w+?)(!=|=|LIKE)(.*)$")


def sys_id() -> str:
    return uuid.uuid4().hex


class FakeServiceNow(FakeBase):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TABLES}
        seed = [
            ("Email server down for Finance", "1", "true", "2"),
            ("VPN gateway unreachable", "1", "true", "2"),
            ("Printer jam on floor 3", "4", "true", "1"),
            ("Payroll export failed", "1", "false", "7"),
            ("Wi-Fi slow in building B", "3", "true", "2"),
            ("SAP login errors", "1", "true", "1"),
        ]
        for n, (text, priority, active, state) in enumerate(seed, start=1):
            self._insert(
                "incident",
                {
                    "number": f"INC00100{n:02d}",
                    "short_description": text,
                    "priority": priority,
                    "active": active,
                    "state": state,
                    "urgency": priority if priority != "4" else "3",
                },
            )
        articles = [
            (
                "KB0010001",
                "How to reset your VPN connection",
                "<p>Open the VPN client and choose <b>Reconnect</b>. If that fails, reboot.</p>",
            ),
            ("KB0010002", "Printer troubleshooting", "<p>Check the paper tray &amp; toner.</p>"),
            ("KB0010003", "Old VPN guide (retired)", "<p>Do not use.</p>"),
        ]
        for number, title, text in articles:
            state = "retired" if "retired" in title else "published"
            self._insert(
                "kb_knowledge",
                {
                    "number": number,
                    "short_description": title,
                    "text": text,
                    "workflow_state": state,
                },
            )
        self.app = Starlette(
            routes=[
                Route("/api/now/table/{table}", self.collection, methods=["GET", "POST"]),
                Route(
                    "/api/now/table/{table}/{sys_id}",
                    self.record,
                    methods=["GET", "PATCH", "PUT", "DELETE"],
                ),
            ]
        )

    def _insert(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        record = {
            "sys_id": sys_id(),
            "sys_created_on": "2026-11-29 09:00:00",
            "sys_updated_on": "2026-11-29 09:00:00",
            **values,
        }
        if table == "incident" and "number" not in values:
            record["number"] = f"INC00200{len(self.tables[table]) + 1:02d}"
            record.setdefault("active", "true")
            record.setdefault("state", "1")
        self.tables[table][record["sys_id"]] = record
        return record

    @staticmethod
    def error(status: int, message: str, detail: str = "") -> Response:
        return JSONResponse(
            {"error": {"message": message, "detail": detail or None}, "status": "failure"}, status
        )

    def _gate(self, request: Request) -> Response | None:
        scripted = self.scripted(request)
        if scripted is not None:
            return scripted
        if basic_user(request) == (USER, PASSWORD):
            return None
        if request.headers.get("authorization") == f"Bearer {BEARER}":
            return None
        return self.error(401, "User Not Authenticated", "Required to provide Auth information")

    def _table(self, request: Request) -> str | Response:
        table = request.path_params["table"]
        if table not in self.tables:
            return self.error(400, "Invalid table " + table)
        return table

    def _matches(self, record: dict[str, Any], query: str) -> bool:
        """`a^b^ORc` means a AND (b OR c), as in ServiceNow; `^^` is a literal ^."""
        if not query:
            return True
        groups: list[list[str]] = []
        for raw in query.replace("^^", "\x00").split("^"):
            if raw.startswith("ORDERBY"):
                continue
            if raw.startswith("OR") and groups:
                groups[-1].append(raw[2:])
            else:
                groups.append([raw])
        return all(any(self._hit(record, c.replace("\x00", "^")) for c in g) for g in groups)

    @staticmethod
    def _hit(record: dict[str, Any], cond: str) -> bool:
        match = _COND.match(cond)
        if match is None:
            return False
        field, op, value = match.groups()
        actual = str(record.get(field, ""))
        if op == "LIKE":
            return value.lower() in actual.lower()
        return (actual == value) == (op == "=")

    def _fields(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        wanted = request.query_params.get("sysparm_fields")
        if not wanted:
            return record
        names = wanted.split(",")
        return {k: record.get(k, "") for k in names}

    async def collection(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        table = self._table(request)
        if isinstance(table, Response):
            return table
        if request.method == "POST":
            values = await request.json()
            if not isinstance(values, dict):
                return self.error(400, "Exception while reading request", "body must be an object")
            unknown = [k for k in values if not re.fullmatch(r"[a-z_]+", k)]
            if unknown:
                return self.error(400, "Invalid field", ", ".join(unknown))
            record = self._insert(table, values)
            return JSONResponse({"result": record}, 201)
        query = request.query_params.get("sysparm_query", "")
        limit = int(request.query_params.get("sysparm_limit", "10000"))
        offset = int(request.query_params.get("sysparm_offset", "0"))
        matched = [r for r in self.tables[table].values() if self._matches(r, query)]
        page = matched[offset : offset + limit]
        headers = {"X-Total-Count": str(len(matched))}
        base = str(request.url).split("?")[0]
        links = []
        if offset + limit < len(matched):
            params = dict(request.query_params) | {"sysparm_offset": str(offset + limit)}
            links.append(f'<{base}?{urlencode(params)}>;rel="next"')
        params = dict(request.query_params) | {"sysparm_offset": "0"}
        links.append(f'<{base}?{urlencode(params)}>;rel="first"')
        headers["Link"] = ",".join(links)
        return JSONResponse({"result": [self._fields(r, request) for r in page]}, headers=headers)

    async def record(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        table = self._table(request)
        if isinstance(table, Response):
            return table
        record = self.tables[table].get(request.path_params["sys_id"])
        if record is None:
            return self.error(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        if request.method in ("PATCH", "PUT"):
            record.update(await request.json())
            record["sys_updated_on"] = "2026-11-29 10:00:00"
        return JSONResponse({"result": self._fields(record, request)})
