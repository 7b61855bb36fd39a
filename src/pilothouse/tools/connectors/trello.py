"""Trello REST API 1: boards, lists and cards (search, create, move, comment).

Wire format (Trello REST API reference):
- auth: the API key and a user token as `key` and `token` query parameters (the
  credential is bound to the configured origin; URLs in messages and logs never
  show query strings, so neither appears there);
- `GET /1/members/me/boards`, `GET /1/boards/{id}/lists`, `GET /1/lists/{id}/cards`,
  `GET /1/search?query=...&modelTypes=cards`, `POST /1/cards`,
  `PUT /1/cards/{id}`, `POST /1/cards/{id}/actions/comments`;
- errors are plain text ("invalid key", "unauthorized card permission requested",
  "The requested resource was not found."), 429 is JSON
  `{"error": "API_TOKEN_LIMIT_EXCEEDED", "message": ...}`.
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
from pilothouse.tools.http import HttpResponse

CARD_FIELDS = "name,desc,due,idList,idBoard,shortUrl,closed"


def trello_detail(response: HttpResponse) -> str:
    text = response.text.strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or text)[:300]
    return text[:300]


def _card(card: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": card.get("id"),
        "name": card.get("name"),
        "description": card.get("desc") or None,
        "due": card.get("due"),
        "list_id": card.get("idList"),
        "board_id": card.get("idBoard"),
        "url": card.get("shortUrl"),
    }
    return {k: v for k, v in out.items() if v is not None}


class Trello:
    def __init__(self, api: ApiClient, *, budget: int):
        self.api = api
        self.budget = budget

    async def boards(self, args: dict[str, Any]) -> Any:
        data = await self.api.json(
            "GET", "/1/members/me/boards", params={"filter": "open", "fields": "name,shortUrl"}
        )
        return {
            "boards": [{"id": b["id"], "name": b["name"], "url": b.get("shortUrl")} for b in data]
        }

    async def lists(self, args: dict[str, Any]) -> Any:
        board = path_segment(args["board_id"], "board id")
        data = await self.api.json(
            "GET", f"/1/boards/{board}/lists", params={"filter": "open", "fields": "name,pos"}
        )
        return {"lists": [{"id": x["id"], "name": x["name"]} for x in data]}

    async def cards(self, args: dict[str, Any]) -> Any:
        list_id = path_segment(args["list_id"], "list id")
        data = await self.api.json(
            "GET", f"/1/lists/{list_id}/cards", params={"fields": CARD_FIELDS}
        )
        return {"cards": [_card(c) for c in data]}

    async def search(self, args: dict[str, Any]) -> Any:
        params: dict[str, Any] = {
            "query": args["query"],
            "modelTypes": "cards",
            "cards_limit": int(args.get("limit", 10)),
            "card_fields": CARD_FIELDS,
            "partial": "true",
        }
        if args.get("board_id"):
            params["idBoards"] = path_segment(args["board_id"], "board id")
        data = await self.api.json("GET", "/1/search", params=params)
        cards = [_card(c) for c in data.get("cards") or []]
        return {"cards": cards, "count": len(cards)}

    async def create(self, args: dict[str, Any]) -> Any:
        params: dict[str, Any] = {
            "idList": path_segment(args["list_id"], "list id"),
            "name": args["name"],
            "pos": "top",
        }
        if args.get("description"):
            params["desc"] = args["description"]
        if args.get("due"):
            params["due"] = args["due"]
        return _card(await self.api.json("POST", "/1/cards", params=params))

    async def move(self, args: dict[str, Any]) -> Any:
        card = path_segment(args["card_id"], "card id")
        params = {
            "idList": path_segment(args["list_id"], "list id"),
            "pos": args.get("position", "top"),
        }
        return _card(await self.api.json("PUT", f"/1/cards/{card}", params=params))

    async def comment(self, args: dict[str, Any]) -> Any:
        card = path_segment(args["card_id"], "card id")
        data = await self.api.json(
            "POST", f"/1/cards/{card}/actions/comments", params={"text": args["text"]}
        )
        return {"card_id": args["card_id"], "comment_id": data.get("id"), "status": "added"}

    def tools(self) -> list[Tool]:
        board = string("The board id (from trello_list_boards).")
        list_id = string("The list id (from trello_list_lists).")
        card = string("The card id.")
        b = self.budget
        return [
            ConnectorTool(
                "trello_list_boards",
                "List the open Trello boards of the account.",
                obj({}),
                self.boards,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_list_lists",
                "List the open lists (columns) of a Trello board.",
                obj({"board_id": board}, ["board_id"]),
                self.lists,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_list_cards",
                "List the cards in a Trello list.",
                obj({"list_id": list_id}, ["list_id"]),
                self.cards,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_search_cards",
                "Search Trello cards by words in their name or description.",
                obj(
                    {
                        "query": string("Words to search for."),
                        "board_id": board,
                        "limit": integer("How many cards.", 10, 1, 100),
                    },
                    ["query"],
                ),
                self.search,
                read_only=True,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_create_card",
                "Create a Trello card in a list. Needs approval.",
                obj(
                    {
                        "list_id": list_id,
                        "name": string("The card title."),
                        "description": string("The card description."),
                        "due": string("Due date, ISO 8601.", format="date-time"),
                    },
                    ["list_id", "name"],
                ),
                self.create,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_move_card",
                "Move a Trello card to another list. Needs approval.",
                obj(
                    {
                        "card_id": card,
                        "list_id": list_id,
                        "position": string("top or bottom", enum=["top", "bottom"]),
                    },
                    ["card_id", "list_id"],
                ),
                self.move,
                read_only=False,
                result_budget=b,
            ),
            ConnectorTool(
                "trello_comment_card",
                "Add a comment to a Trello card. Needs approval.",
                obj({"card_id": card, "text": string("The comment.")}, ["card_id", "text"]),
                self.comment,
                read_only=False,
                result_budget=b,
            ),
        ]
