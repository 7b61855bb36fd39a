"""Jira Cloud REST API v3: search by JQL, read, create, comment, transition, projects.

Wire format (Atlassian's REST v3 reference):
- search: `GET /rest/api/3/search/jql?jql=...&maxResults=...&fields=...&nextPageToken=...`
  answering `{"issues": [...], "nextPageToken": "...", "isLast": bool}` (the token is
  absent on the last page);
- descriptions and comments are Atlassian Document Format (ADF) documents;
- errors: `{"errorMessages": [...], "errors": {"field": "message"}}`;
- auth: basic with the account e-mail and an API token (Cloud), or a bearer
  personal access token (Data Center).
"""

from __future__ import annotations

import json
from typing import Any

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

SEARCH_FIELDS = ["summary", "status", "priority", "assignee", "issuetype", "updated", "project"]
ISSUE_FIELDS = [*SEARCH_FIELDS, "description", "reporter", "created", "labels", "comment"]
MAX_PAGES = 10


def jira_detail(response: HttpResponse) -> str:
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = [str(m) for m in data.get("errorMessages") or []]
    parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
    return "; ".join(parts)[:500] or response.text.strip()[:300]


def to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: one paragraph per blank-line-separated block,
    line breaks kept as hardBreak nodes."""
    content: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        nodes: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def from_adf(node: Any) -> str:
    """The text of an ADF document (paragraphs separated by blank lines)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji"):
        attrs = node.get("attrs") or {}
        return str(attrs.get("text") or attrs.get("shortName") or "")
    inner = "".join(from_adf(child) for child in node.get("content") or [])
    if kind in ("paragraph", "heading", "listItem", "codeBlock", "blockquote"):
        return inner.strip("\n") + "\n\n"
    return inner if kind != "doc" else inner.strip()


def _name(value: Any, key: str = "name") -> Any:
    return value.get(key) if isinstance(value, dict) else value


def simplify_issue(issue: dict[str, Any], base_url: str, *, full: bool = False) -> dict[str, Any]:
    fields = issue.get("fields") or {}
    out: dict[str, Any] = {
        "key": issue.get("key"),
        "summary": fields.get("summary"),
        "status": _name(fields.get("status")),
        "priority": _name(fields.get("priority")),
        "type": _name(fields.get("issuetype")),
        "assignee": _name(fields.get("assignee"), "displayName"),
        "project": _name(fields.get("project"), "key"),
        "updated": fields.get("updated"),
        "url": f"{base_url}/browse/{issue.get('key')}",
    }
    if full:
        out["reporter"] = _name(fields.get("reporter"), "displayName")
        out["created"] = fields.get("created")
        out["labels"] = fields.get("labels") or []
        out["description"] = from_adf(fields.get("description"))
        comments = (fields.get("comment") or {}).get("comments") or []
        out["comments"] = [
            {
                "author": _name(c.get("author"), "displayName"),
                "created": c.get("created"),
                "body": from_adf(c.get("body")),
            }
            for c in comments[-10:]
        ]
    return {k: v for k, v in out.items() if v is not None}


class Jira:
    def __init__(self, api: ApiClient, *, budget: int):
        self.api = api
        self.budget = budget

    async def search(self, args: dict[str, Any]) -> Any:
        wanted = int(args.get("max_results", 20))
        token = args.get("next_page_token")
        issues: list[dict[str, Any]] = []
        is_last = True
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {
                "jql": args["jql"],
                "maxResults": min(wanted - len(issues), 100),
                "fields": ",".join(SEARCH_FIELDS),
            }
            if token:
                params["nextPageToken"] = token
            page = await self.api.json("GET", "/rest/api/3/search/jql", params=params)
            issues += [simplify_issue(i, self.api.base_url) for i in page.get("issues") or []]
            token = page.get("nextPageToken")
            is_last = bool(page.get("isLast", not token))
            if is_last or not token or len(issues) >= wanted:
                break
        result: dict[str, Any] = {"issues": issues[:wanted], "count": len(issues[:wanted])}
        if not is_last and token:
            result["next_page_token"] = token
            result["note"] = "more issues match; call again with next_page_token to see them"
        return result

    async def get_issue(self, args: dict[str, Any]) -> Any:
        key = path_segment(args["issue_key"], "issue key")
        issue = await self.api.json(
            "GET", f"/rest/api/3/issue/{key}", params={"fields": ",".join(ISSUE_FIELDS)}
        )
        return simplify_issue(issue, self.api.base_url, full=True)

    async def create_issue(self, args: dict[str, Any]) -> Any:
        fields: dict[str, Any] = {
            "project": {"key": args["project_key"]},
            "summary": args["summary"],
            "issuetype": {"name": args.get("issue_type", "Task")},
        }
        if args.get("description"):
            fields["description"] = to_adf(args["description"])
        if args.get("priority"):
            fields["priority"] = {"name": args["priority"]}
        if args.get("labels"):
            fields["labels"] = args["labels"]
        created = await self.api.json("POST", "/rest/api/3/issue", json_body={"fields": fields})
        key = created.get("key")
        return {"key": key, "id": created.get("id"), "url": f"{self.api.base_url}/browse/{key}"}

    async def add_comment(self, args: dict[str, Any]) -> Any:
        key = path_segment(args["issue_key"], "issue key")
        made = await self.api.json(
            "POST", f"/rest/api/3/issue/{key}/comment", json_body={"body": to_adf(args["body"])}
        )
        return {"issue_key": args["issue_key"], "comment_id": made.get("id"), "status": "added"}

    async def _transitions(self, key: str) -> list[dict[str, Any]]:
        data = await self.api.json("GET", f"/rest/api/3/issue/{key}/transitions")
        return [
            {"id": str(t.get("id")), "name": t.get("name"), "to_status": _name(t.get("to"))}
            for t in data.get("transitions") or []
        ]

    async def get_transitions(self, args: dict[str, Any]) -> Any:
        key = path_segment(args["issue_key"], "issue key")
        return {"issue_key": args["issue_key"], "transitions": await self._transitions(key)}

    async def transition(self, args: dict[str, Any]) -> Any:
        key = path_segment(args["issue_key"], "issue key")
        wanted = str(args["transition"]).strip()
        options = await self._transitions(key)
        match = next(
            (
                t
                for t in options
                if wanted == t["id"]
                or wanted.lower() in (str(t["name"]).lower(), str(t["to_status"]).lower())
            ),
            None,
        )
        if match is None:
            names = ", ".join(f"{t['name']} (id {t['id']})" for t in options) or "none"
            raise ToolArgumentsError(
                f"issue {args['issue_key']} has no transition {wanted!r}; available: {names}"
            )
        body: dict[str, Any] = {"transition": {"id": match["id"]}}
        if args.get("comment"):
            body["update"] = {"comment": [{"add": {"body": to_adf(args["comment"])}}]}
        await self.api.request("POST", f"/rest/api/3/issue/{key}/transitions", json_body=body)
        return {"issue_key": args["issue_key"], "transition": match["name"], "status": "done"}

    async def list_projects(self, args: dict[str, Any]) -> Any:
        wanted = int(args.get("max_results", 50))
        start = 0
        projects: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"startAt": start, "maxResults": min(wanted, 50)}
            if args.get("query"):
                params["query"] = args["query"]
            page = await self.api.json("GET", "/rest/api/3/project/search", params=params)
            values = page.get("values") or []
            projects += [
                {"key": p.get("key"), "name": p.get("name"), "type": p.get("projectTypeKey")}
                for p in values
            ]
            start += len(values)
            if page.get("isLast", True) or not values or len(projects) >= wanted:
                break
        return {"projects": projects[:wanted], "count": len(projects[:wanted])}

    def tools(self) -> list[Tool]:
        key = string("The issue key, e.g. OPS-123.", pattern=r"^[A-Za-z][A-Za-z0-9_]*-\d+$")
        b = self.budget
        return [
            ConnectorTool(
                "jira_search_issues",
                "Search Jira issues with JQL, e.g. `project = OPS AND statusCategory != Done "
                "AND priority = Highest ORDER BY updated DESC` or `assignee = currentUser()`. "
                "Returns key, summary, status, priority, assignee and URL for each issue.",
                obj(
                    {
                        "jql": string("The JQL query."),
                        "max_results": integer("How many issues to return.", 20, 1, 100),
                        "next_page_token": string("From a previous result, for the next page."),
                    },
                    ["jql"],
                ),
                self.search,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_get_issue",
                "Get one Jira issue with its description and latest comments.",
                obj({"issue_key": key}, ["issue_key"]),
                self.get_issue,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_create_issue",
                "Create a Jira issue (a ticket). Needs approval.",
                obj(
                    {
                        "project_key": string("The project key, e.g. OPS."),
                        "summary": string("One-line title.", maxLength=255),
                        "description": string("Plain-text description."),
                        "issue_type": string("Task, Bug, Story, ...", default="Task"),
                        "priority": string("Highest, High, Medium, Low or Lowest."),
                        "labels": {"type": "array", "items": {"type": "string"}},
                    },
                    ["project_key", "summary"],
                ),
                self.create_issue,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_add_comment",
                "Add a comment to a Jira issue. Needs approval.",
                obj({"issue_key": key, "body": string("The comment text.")}, ["issue_key", "body"]),
                self.add_comment,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_get_transitions",
                "List the workflow transitions available for a Jira issue now.",
                obj({"issue_key": key}, ["issue_key"]),
                self.get_transitions,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_transition_issue",
                "Move a Jira issue through its workflow (e.g. to 'In Progress' or 'Done') by "
                "transition name, target status or id. Needs approval.",
                obj(
                    {
                        "issue_key": key,
                        "transition": string("Transition name, target status, or id."),
                        "comment": string("Optional comment to add with the transition."),
                    },
                    ["issue_key", "transition"],
                ),
                self.transition,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "jira_list_projects",
                "List the Jira projects visible to the account, optionally filtered by name.",
                obj(
                    {
                        "query": string("Part of a project name or key."),
                        "max_results": integer("How many projects to return.", 50, 1, 200),
                    }
                ),
                self.list_projects,
                read_only=True,
                result_budget=b,
            ),
        ]
