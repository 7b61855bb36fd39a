"""A strict local Jira Cloud REST v3 server: basic auth (e-mail + API token), the
enhanced JQL search with nextPageToken pagination, issues with ADF descriptions,
comments, transitions, paginated project search, and Jira's error bodies."""

from __future__ import annotations

import base64
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.tools.fakes.common import FakeBase, basic_user

EMAIL = "bot@acme.example"
TOKEN = "jira-api-token-123"
TRANSITIONS = {
    "To Do": [("11", "Start Progress", "In Progress"), ("31", "Done", "Done")],
    "In Progress": [("21", "Stop Progress", "To Do"), ("31", "Done", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
_CLAUSE = re.compile(r'^\s*(\w+)\s*(!=|=)\s*"?([^"]+?)"?\s*$')


def is_adf(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    )


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


class FakeJira(FakeBase):
    def __init__(self, page_size: int = 3) -> None:
        super().__init__()
        self.page_size = page_size
        self.projects = [
            {"id": str(10000 + i), "key": key, "name": name, "projectTypeKey": "software"}
            for i, (key, name) in enumerate(
                [("OPS", "Operations"), ("IT", "IT Support"), ("HR", "People"), ("FIN", "Finance")]
            )
        ]
        self.issues: dict[str, dict[str, Any]] = {}
        seed = [
            ("OPS", "Database failover test", "Highest", "To Do", "Ada"),
            ("OPS", "VPN gateway drops connections", "Highest", "In Progress", "Grace"),
            ("OPS", "Rotate TLS certificates", "High", "To Do", None),
            ("OPS", "Disk usage alert on build agents", "Highest", "To Do", "Ada"),
            ("OPS", "Old backups not pruned", "Low", "Done", "Linus"),
            ("IT", "New laptop for Alan", "Medium", "To Do", None),
            ("OPS", "Monitoring gaps on payment API", "Highest", "To Do", None),
        ]
        for project, summary, priority, status, assignee in seed:
            self._add(project, summary, priority, status, assignee, adf(f"Details: {summary}."))
        self.app = Starlette(
            routes=[
                Route("/rest/api/3/search/jql", self.search, methods=["GET", "POST"]),
                Route("/rest/api/3/issue", self.create, methods=["POST"]),
                Route("/rest/api/3/issue/{key}", self.get_issue),
                Route("/rest/api/3/issue/{key}/comment", self.comment, methods=["POST"]),
                Route(
                    "/rest/api/3/issue/{key}/transitions",
                    self.transitions,
                    methods=["GET", "POST"],
                ),
                Route("/rest/api/3/project/search", self.project_search),
            ]
        )

    def _add(
        self,
        project: str,
        summary: str,
        priority: str,
        status: str,
        assignee: str | None,
        description: Any,
        issuetype: str = "Task",
    ) -> dict[str, Any]:
        number = 1 + sum(
            1 for i in self.issues.values() if i["fields"]["project"]["key"] == project
        )
        key = f"{project}-{number}"
        issue = {
            "id": str(20000 + len(self.issues)),
            "key": key,
            "self": f"https://acme.atlassian.net/rest/api/3/issue/{key}",
            "fields": {
                "summary": summary,
                "status": {"name": status, "statusCategory": {"name": status}},
                "priority": {"name": priority},
                "issuetype": {"name": issuetype},
                "assignee": {"displayName": assignee} if assignee else None,
                "reporter": {"displayName": "Pilothouse Bot"},
                "project": {"key": project, "name": project},
                "created": "2026-11-01T09:00:00.000+0000",
                "updated": f"2026-11-{10 + len(self.issues):02d}T09:00:00.000+0000",
                "labels": [],
                "description": description,
                "comment": {"comments": [], "total": 0},
            },
        }
        self.issues[key] = issue
        return issue

    # --- plumbing -----------------------------------------------------------------

    def _gate(self, request: Request) -> Response | None:
        scripted = self.scripted(request)
        if scripted is not None:
            return scripted
        if basic_user(request) != (EMAIL, TOKEN):
            return JSONResponse(
                {
                    "errorMessages": [
                        "You are not authenticated. Authentication required to perform this "
                        "operation."
                    ],
                    "errors": {},
                },
                401,
            )
        return None

    @staticmethod
    def _error(status: int, *messages: str, **fields: str) -> Response:
        return JSONResponse({"errorMessages": list(messages), "errors": fields}, status)

    def _issue_or_404(self, key: str) -> dict[str, Any] | Response:
        issue = self.issues.get(key.upper())
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    # --- search -------------------------------------------------------------------

    def _matches(self, issue: dict[str, Any], jql: str) -> bool | Response:
        where = re.split(r"\s+ORDER\s+BY\s+", jql, flags=re.IGNORECASE)[0]
        fields = issue["fields"]
        values = {
            "project": fields["project"]["key"],
            "status": fields["status"]["name"],
            "statuscategory": fields["status"]["statusCategory"]["name"],
            "priority": fields["priority"]["name"],
            "assignee": (fields["assignee"] or {}).get("displayName", "EMPTY"),
        }
        for clause in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
            if not clause:
                continue
            match = _CLAUSE.match(clause)
            if match is None or match.group(1).lower() not in values:
                return self._error(
                    400, f"Error in the JQL Query: the clause '{clause}' is not supported."
                )
            field, op, wanted = match.group(1).lower(), match.group(2), match.group(3)
            equal = str(values[field]).lower() == wanted.lower()
            if equal != (op == "="):
                return False
        return True

    async def search(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.json()).items()})
        jql = params.get("jql", "")
        if not jql:
            return self._error(400, "The JQL query must be bounded: add a search restriction.")
        max_results = int(params.get("maxResults", 50))
        if not 0 < max_results <= 5000:
            return self._error(400, "maxResults must be between 1 and 5000.")
        token = params.get("nextPageToken")
        start = int(base64.b64decode(token).decode()) if token else 0
        matched = []
        for issue in sorted(
            self.issues.values(), key=lambda i: i["fields"]["updated"], reverse=True
        ):
            verdict = self._matches(issue, jql)
            if isinstance(verdict, Response):
                return verdict
            if verdict:
                matched.append(issue)
        size = min(max_results, self.page_size)
        page = matched[start : start + size]
        wanted = set((params.get("fields") or "").split(",")) - {""}
        body: dict[str, Any] = {
            "issues": [
                {**i, "fields": {k: v for k, v in i["fields"].items() if not wanted or k in wanted}}
                for i in page
            ],
            "isLast": start + size >= len(matched),
        }
        if not body["isLast"]:
            body["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
        return JSONResponse(body)

    # --- issues -------------------------------------------------------------------

    async def get_issue(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        issue = self._issue_or_404(request.path_params["key"])
        return issue if isinstance(issue, Response) else JSONResponse(issue)

    async def create(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        fields = (await request.json()).get("fields") or {}
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in {p["key"] for p in self.projects}:
            errors["project"] = "valid project is required"
        if not isinstance(fields.get("summary"), str) or not fields["summary"].strip():
            errors["summary"] = "You must specify a summary of the issue."
        issuetype = (fields.get("issuetype") or {}).get("name")
        if issuetype not in ("Task", "Bug", "Story", "Incident"):
            errors["issuetype"] = "valid issue type is required"
        if "description" in fields and not is_adf(fields["description"]):
            errors["description"] = (
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            )
        if errors:
            return self._error(400, **errors)
        issue = self._add(
            project,
            fields["summary"],
            (fields.get("priority") or {}).get("name", "Medium"),
            "To Do",
            None,
            fields.get("description"),
            issuetype,
        )
        return JSONResponse({"id": issue["id"], "key": issue["key"], "self": issue["self"]}, 201)

    async def comment(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        issue = self._issue_or_404(request.path_params["key"])
        if isinstance(issue, Response):
            return issue
        body = (await request.json()).get("body")
        if not is_adf(body):
            return self._error(400, **{"comment": "Comment body must be an Atlassian Document"})
        comments = issue["fields"]["comment"]["comments"]
        comment = {
            "id": str(30000 + len(comments)),
            "author": {"displayName": "Pilothouse Bot"},
            "body": body,
            "created": "2026-11-29T10:00:00.000+0000",
        }
        comments.append(comment)
        return JSONResponse(comment, 201)

    async def transitions(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        issue = self._issue_or_404(request.path_params["key"])
        if isinstance(issue, Response):
            return issue
        status = issue["fields"]["status"]["name"]
        options = TRANSITIONS[status]
        if request.method == "GET":
            return JSONResponse(
                {
                    "transitions": [
                        {"id": tid, "name": name, "to": {"name": to}} for tid, name, to in options
                    ]
                }
            )
        wanted = ((await request.json()).get("transition") or {}).get("id")
        target = next((to for tid, _, to in options if tid == wanted), None)
        if target is None:
            return self._error(400, f"Transition id '{wanted}' is not valid for this issue.")
        issue["fields"]["status"] = {"name": target, "statusCategory": {"name": target}}
        return Response(status_code=204)

    async def project_search(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        start = int(request.query_params.get("startAt", 0))
        size = min(int(request.query_params.get("maxResults", 50)), 2)  # small pages
        query = request.query_params.get("query", "").lower()
        found = [
            p for p in self.projects if query in p["name"].lower() or query in p["key"].lower()
        ]
        page = found[start : start + size]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(found),
                "isLast": start + size >= len(found),
                "values": page,
            }
        )
