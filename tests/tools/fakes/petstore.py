"""A strict local Swagger Petstore (OpenAPI 3.0) and Train Travel API (OpenAPI 3.1)
for the OpenAPI tool tests. Each serves its own document, as the real services do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

DATA = Path(__file__).resolve().parent.parent / "data" / "openapi"
API_KEY = "special-key"


class Petstore:
    def __init__(self, pets: int = 3) -> None:
        self.pets: dict[int, dict[str, Any]] = {
            i: {
                "id": i,
                "name": f"pet-{i}",
                "photoUrls": [],
                "tags": [{"id": 1, "name": "tag1" if i % 2 else "tag2"}],
                "status": "available" if i % 3 else "sold",
            }
            for i in range(1, pets + 1)
        }
        self.requests: list[Request] = []
        self.app = Starlette(routes=[Mount("/v3", routes=self._routes())])

    def _routes(self) -> list[Route]:
        return [
            Route("/openapi.json", self.document),
            Route("/pet", self.add_or_update, methods=["POST", "PUT"]),
            Route("/pet/findByStatus", self.find_by_status),
            Route("/pet/findByTags", self.find_by_tags),
            Route("/pet/{pet_id}", self.pet, methods=["GET", "DELETE"]),
            Route("/store/inventory", self.inventory),
        ]

    async def document(self, request: Request) -> Response:
        return Response((DATA / "petstore-3.0.yaml").read_bytes(), media_type="application/yaml")

    def _denied(self, request: Request) -> Response | None:
        self.requests.append(request)
        if request.headers.get("api_key") != API_KEY:
            return JSONResponse({"code": 401, "message": "missing or wrong api_key"}, 401)
        return None

    async def add_or_update(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"code": 415, "message": "send JSON"}, 415)
        pet = await request.json()
        if not isinstance(pet.get("name"), str) or "photoUrls" not in pet:
            return JSONResponse({"code": 400, "message": "Invalid input"}, 400)
        if request.method == "PUT" and pet.get("id") not in self.pets:
            return JSONResponse({"code": 404, "message": "Pet not found"}, 404)
        pet.setdefault("id", max(self.pets, default=0) + 1)
        self.pets[pet["id"]] = pet
        return JSONResponse(pet)

    async def find_by_status(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        status = request.query_params.get("status", "available")
        if status not in ("available", "pending", "sold"):
            return JSONResponse({"code": 400, "message": "Invalid status value"}, 400)
        return JSONResponse([p for p in self.pets.values() if p.get("status") == status])

    async def find_by_tags(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        tags = set(request.query_params.getlist("tags"))
        return JSONResponse(
            [p for p in self.pets.values() if tags & {t["name"] for t in p.get("tags", [])}]
        )

    async def pet(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        raw = request.path_params["pet_id"]
        if not raw.isdigit():
            return JSONResponse({"code": 400, "message": "Invalid ID supplied"}, 400)
        pet_id = int(raw)
        if pet_id not in self.pets:
            return JSONResponse({"code": 1, "type": "error", "message": "Pet not found"}, 404)
        if request.method == "DELETE":
            del self.pets[pet_id]
            return Response(status_code=200)
        return JSONResponse(self.pets[pet_id])

    async def inventory(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        counts: dict[str, int] = {}
        for pet in self.pets.values():
            counts[pet["status"]] = counts.get(pet["status"], 0) + 1
        return JSONResponse(counts)


class TrainTravel:
    """Train Travel API with an OAuth2 client-credentials token endpoint."""

    CLIENT_ID = "copilot"
    CLIENT_SECRET = "tt-secret"
    TOKEN = "tt-access-token"

    def __init__(self) -> None:
        self.token_requests = 0
        self.bookings: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/stations", self.stations),
                Route("/bookings", self.bookings_route, methods=["GET", "POST"]),
                Route("/bookings/{booking_id}", self.booking, methods=["GET", "DELETE"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = await request.form()
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.CLIENT_ID
            or form.get("client_secret") != self.CLIENT_SECRET
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        return JSONResponse(
            {"access_token": self.TOKEN, "token_type": "Bearer", "expires_in": 3600}
        )

    def _problem(self, status: int, title: str, detail: str) -> Response:
        return JSONResponse(
            {
                "type": "https://example.com/errors",
                "title": title,
                "detail": detail,
                "status": status,
            },
            status,
            media_type="application/problem+json",
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return self._problem(401, "Unauthorized", "a valid bearer token is required")
        return None

    async def stations(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        stations = [
            {
                "id": "efdbb9d1-02c2-4bc3-afb7-6788d8782b1e",
                "name": "Berlin Hauptbahnhof",
                "address": "Invalidenstraße 10557 Berlin, Germany",
                "country_code": "DE",
            },
            {
                "id": "b2e783e1-c824-4d63-b37a-d8d698862f1d",
                "name": "Paris Gare du Nord",
                "address": "18 Rue de Dunkerque 75010 Paris, France",
                "country_code": "FR",
            },
        ]
        search = request.query_params.get("search", "").lower()
        country = request.query_params.get("country")
        found = [
            s
            for s in stations
            if search in s["name"].lower() and (country is None or s["country_code"] == country)
        ]
        return JSONResponse({"data": found, "links": {"self": str(request.url)}})

    async def bookings_route(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        if request.method == "GET":
            return JSONResponse({"data": list(self.bookings.values()), "links": {}})
        body = await request.json()
        if "id" in body:
            return self._problem(400, "Bad Request", "id is read-only")
        if not body.get("trip_id") or not body.get("passenger_name"):
            return self._problem(400, "Bad Request", "trip_id and passenger_name are required")
        booking_id = f"00000000-0000-4000-8000-{len(self.bookings) + 1:012d}"
        booking = {"id": booking_id, **body}
        self.bookings[booking_id] = booking
        return JSONResponse(booking, 201)

    async def booking(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        booking_id = request.path_params["booking_id"]
        if booking_id not in self.bookings:
            return self._problem(404, "Not Found", f"booking {booking_id} does not exist")
        if request.method == "DELETE":
            del self.bookings[booking_id]
            return Response(status_code=204)
        return JSONResponse(self.bookings[booking_id])
