"""A strict local Trello REST API 1: key and token as query parameters, plain-text
errors, 24-hex ids, boards/lists/cards/search/comments."""

from __future__ import annotations

import itertools
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.tools.fakes.common import FakeBase

KEY = "trello-key-abc123"
TOKEN = "trello-token-xyz789"
_ID = re.compile(r"^[0-9a-f]{24}$")
_counter = itertools.count(1)


def new_id() -> str:
    return f"{next(_counter):024x}"


class FakeTrello(FakeBase):
    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        board = self._board("Service Desk")
        todo = self._list(board, "To do")
        self._list(board, "Doing")
        self._list(board, "Done")
        self._card(todo, "Replace VPN certificates", "Expire on Friday")
        self._card(todo, "Order printer toner", "")
        self._board("Marketing")
        self.app = Starlette(
            routes=[
                Route("/1/members/me/boards", self.my_boards),
                Route("/1/boards/{id}/lists", self.board_lists),
                Route("/1/lists/{id}/cards", self.list_cards),
                Route("/1/search", self.search),
                Route("/1/cards", self.create_card, methods=["POST"]),
                Route("/1/cards/{id}", self.update_card, methods=["PUT"]),
                Route("/1/cards/{id}/actions/comments", self.comment, methods=["POST"]),
            ]
        )

    def _board(self, name: str) -> str:
        bid = new_id()
        self.boards[bid] = {"id": bid, "name": name, "shortUrl": f"https://trello.com/b/{bid[-8:]}"}
        return bid

    def _list(self, board: str, name: str) -> str:
        lid = new_id()
        self.lists[lid] = {"id": lid, "name": name, "idBoard": board, "closed": False}
        return lid

    def _card(self, list_id: str, name: str, desc: str) -> dict[str, Any]:
        cid = new_id()
        card = {
            "id": cid,
            "name": name,
            "desc": desc,
            "idList": list_id,
            "idBoard": self.lists[list_id]["idBoard"],
            "due": None,
            "closed": False,
            "shortUrl": f"https://trello.com/c/{cid[-8:]}",
        }
        self.cards[cid] = card
        return card

    def _gate(self, request: Request) -> Response | None:
        scripted = self.scripted(request)
        if scripted is not None:
            return scripted
        if request.query_params.get("key") != KEY:
            return PlainTextResponse("invalid key", 401)
        if request.query_params.get("token") != TOKEN:
            return PlainTextResponse("invalid token", 401)
        return None

    def _lookup(self, table: dict[str, dict[str, Any]], raw: str) -> dict[str, Any] | Response:
        if not _ID.match(raw):
            return PlainTextResponse("invalid id", 400)
        found = table.get(raw)
        if found is None:
            return PlainTextResponse("The requested resource was not found.", 404)
        return found

    async def my_boards(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        return JSONResponse(list(self.boards.values()))

    async def board_lists(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        board = self._lookup(self.boards, request.path_params["id"])
        if isinstance(board, Response):
            return board
        return JSONResponse([x for x in self.lists.values() if x["idBoard"] == board["id"]])

    async def list_cards(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        found = self._lookup(self.lists, request.path_params["id"])
        if isinstance(found, Response):
            return found
        return JSONResponse([c for c in self.cards.values() if c["idList"] == found["id"]])

    async def search(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        query = request.query_params.get("query", "").lower()
        if not query:
            return PlainTextResponse("invalid value for query", 400)
        limit = int(request.query_params.get("cards_limit", 10))
        boards = request.query_params.get("idBoards")
        hits = [
            c
            for c in self.cards.values()
            if (query in c["name"].lower() or query in c["desc"].lower())
            and (not boards or c["idBoard"] in boards.split(","))
        ]
        return JSONResponse({"options": {"terms": [{"text": query}]}, "cards": hits[:limit]})

    async def create_card(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        found = self._lookup(self.lists, request.query_params.get("idList", ""))
        if isinstance(found, Response):
            return found
        card = self._card(
            found["id"], request.query_params.get("name", ""), request.query_params.get("desc", "")
        )
        card["due"] = request.query_params.get("due")
        return JSONResponse(card)

    async def update_card(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        card = self._lookup(self.cards, request.path_params["id"])
        if isinstance(card, Response):
            return card
        if "idList" in request.query_params:
            target = self._lookup(self.lists, request.query_params["idList"])
            if isinstance(target, Response):
                return target
            card["idList"] = target["id"]
        return JSONResponse(card)

    async def comment(self, request: Request) -> Response:
        if denied := self._gate(request):
            return denied
        card = self._lookup(self.cards, request.path_params["id"])
        if isinstance(card, Response):
            return card
        text = request.query_params.get("text", "")
        if not text:
            return PlainTextResponse("invalid value for text", 400)
        action = {
            "id": new_id(),
            "type": "commentCard",
            "data": {"text": text, "card": {"id": card["id"]}},
        }
        self.comments.append(action)
        return JSONResponse(action)
