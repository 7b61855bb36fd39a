"""OpenAPI documents become tools: real published documents (trimmed copies under
data/openapi), real HTTP services on 127.0.0.1, and bad documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.config import Settings
from pilothouse.storage.secrets import redactor_for
from pilothouse.testing.loopback import serve_app
from pilothouse.tools.credentials import build_credential
from pilothouse.tools.errors import OpenAPIDocumentError, ToolConfigError
from pilothouse.tools.http import SafeHttpClient
from pilothouse.tools.loader import load_tools
from pilothouse.tools.openapi import generated_name, operations, tools_from_document
from pilothouse.tools.openapi_doc import parse_document
from tests.tools.conftest import port_of
from tests.tools.fakes.petstore import API_KEY, DATA, Petstore, TrainTravel


def settings_with(tmp_path: Path, **env: str) -> Settings:
    return Settings(home=tmp_path, environ=env)


def load_doc(name: str) -> Any:
    path = DATA / name
    return parse_document(path.read_bytes(), str(path))


@pytest.mark.parametrize(
    "name", ["petstore-3.0.yaml", "train-travel-3.1.yaml", "github-issues-excerpt-3.0.yaml"]
)
async def test_real_documents_give_valid_tool_schemas(name: str) -> None:
    doc = load_doc(name)
    async with SafeHttpClient() as client:
        tools = tools_from_document(doc, base_url="https://api.example.com", client=client)
    assert tools
    for tool in tools:
        spec = tool.spec()
        jsonschema.Draft202012Validator.check_schema(spec.parameters)
        assert "$ref" not in repr(spec.parameters)
        assert spec.description
        assert tool.read_only == (tool.operation.method in ("get", "head", "options"))
        assert tool.requires_approval == (not tool.read_only)


async def test_petstore_document_from_the_service_becomes_working_tools(tmp_path: Path) -> None:
    store = Petstore(pets=4)
    with serve_app(store.app) as base:
        entry = {
            "openapi": f"{base}/v3/openapi.json",
            "auth": {"type": "api_key", "value": "${env:PETSTORE_KEY}"},
            "allow_network": [f"127.0.0.1:{port_of(base)}"],
        }
        settings = settings_with(tmp_path, PETSTORE_KEY=API_KEY)
        async with await load_tools([entry], tmp_path, settings) as toolset:
            assert "getPetById" in toolset and "addPet" in toolset
            assert "uploadFile" in toolset  # binary body: no body argument
            assert "body" not in toolset.get("uploadFile").spec().parameters["properties"]  # type: ignore[union-attr]

            pet = await toolset.call("getPetById", {"petId": 2})
            assert not pet.is_error and pet.data["name"] == "pet-2"
            sold = await toolset.call("findPetsByStatus", {"status": "sold"})
            assert [p["id"] for p in sold.data] == [3]
            tagged = await toolset.call("findPetsByTags", {"tags": ["tag1", "nope"]})
            assert sorted(p["id"] for p in tagged.data) == [1, 3]
            inventory = await toolset.call("getInventory", {})
            assert inventory.data == {"available": 3, "sold": 1}

            missing = await toolset.call("getPetById", {"petId": 99})
            assert missing.is_error
            assert "HTTP 404" in missing.content and "Pet not found" in missing.content

            denied = await toolset.call("addPet", {"body": {"name": "Rex", "photoUrls": []}})
            assert denied.is_error and "approval" in denied.content
            added = await toolset.call(
                "addPet", {"body": {"name": "Rex", "photoUrls": []}}, approved=True
            )
            assert added.data["name"] == "Rex" and added.data["id"] == 5
            assert store.pets[5]["name"] == "Rex"

            wrong = await toolset.call("getPetById", {"petId": "two"})
            assert wrong.is_error and "'petId': 'two' is not of type 'integer'" in wrong.content
    assert all(r.headers.get("api_key") == API_KEY for r in store.requests)


async def test_wrong_key_is_a_readable_auth_error(tmp_path: Path) -> None:
    store = Petstore()
    with serve_app(store.app) as base:
        entry = {
            "openapi": str(DATA / "petstore-3.0.yaml"),
            "base_url": f"{base}/v3",
            "auth": {"type": "api_key", "name": "api_key", "in": "header", "value": "${env:K}"},
            "allow_network": [f"127.0.0.1:{port_of(base)}"],
        }
        async with await load_tools(
            [entry], tmp_path, settings_with(tmp_path, K="bad-key-4711")
        ) as ts:
            result = await ts.call("getInventory", {})
    assert result.is_error
    assert "HTTP 401" in result.content and "credentials were refused" in result.content
    assert "bad-key-4711" not in result.content


async def test_filters_by_tag_and_operation_id(tmp_path: Path) -> None:
    doc = str(DATA / "petstore-3.0.yaml")
    base = {"openapi": doc, "base_url": "https://petstore.example"}
    async with await load_tools([{**base, "tags": ["store"]}], tmp_path) as ts:
        assert sorted(ts.names) == ["getInventory", "getOrderById", "placeOrder"]
    async with await load_tools(
        [{**base, "operations": ["getPetById", "findPetsByStatus"], "prefix": "pets_"}], tmp_path
    ) as ts:
        assert sorted(ts.names) == ["pets_findPetsByStatus", "pets_getPetById"]
    with pytest.raises(ToolConfigError, match="no operation named nosuch"):
        await load_tools([{**base, "operations": ["nosuch"]}], tmp_path)


def train_travel(base: str, **auth: Any) -> dict[str, Any]:
    """The tools entry for the Train Travel API served at `base`, with OAuth2 client
    credentials (the secret from $TT_SECRET) and `auth`'s extra settings."""
    return {
        "openapi": str(DATA / "train-travel-3.1.yaml"),
        "base_url": base,
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": f"{base}/oauth/token",
            "client_id": TrainTravel.CLIENT_ID,
            "client_secret": "${env:TT_SECRET}",
            **auth,
        },
        "allow_network": [f"127.0.0.1:{port_of(base)}"],
    }


async def test_openapi_31_with_oauth2_client_credentials(tmp_path: Path) -> None:
    api = TrainTravel()
    with serve_app(api.app) as base:
        entry = train_travel(base, scopes=["read", "write"])
        settings = settings_with(tmp_path, TT_SECRET=TrainTravel.CLIENT_SECRET)
        async with await load_tools([entry], tmp_path, settings) as ts:
            booking_schema = ts.get("create-booking").spec().parameters  # type: ignore[union-attr]
            assert "id" not in booking_schema["properties"]["body"]["properties"]  # readOnly
            found = await ts.call("get-stations", {"search": "paris"})
            assert [s["name"] for s in found.data["data"]] == ["Paris Gare du Nord"]
            made = await ts.call(
                "create-booking",
                {"body": {"trip_id": "4f4e4e1-c824", "passenger_name": "Ada"}},
                approved=True,
            )
            booking_id = made.data["id"]
            fetched = await ts.call("get-booking", {"bookingId": booking_id})
            assert fetched.data["passenger_name"] == "Ada"
            gone = await ts.call("delete-booking", {"bookingId": booking_id}, approved=True)
            assert not gone.is_error and "204" in gone.content
            again = await ts.call("get-booking", {"bookingId": booking_id})
            assert again.is_error and "does not exist" in again.content
    assert api.token_requests == 1


class EchoingTrainTravel(TrainTravel):
    """A service that echoes the request's Authorization header back, as some debug
    endpoints and error pages do."""

    async def stations(self, request: Request) -> Response:
        return JSONResponse({"data": [], "echo": request.headers.get("authorization", "")})


async def test_an_oauth2_token_fetched_at_run_time_is_masked_like_configured_secrets(
    tmp_path: Path,
) -> None:
    api = EchoingTrainTravel()
    with serve_app(api.app) as base:
        entry = train_travel(base)
        settings = settings_with(tmp_path, TT_SECRET=TrainTravel.CLIENT_SECRET)
        async with await load_tools([entry], tmp_path, settings) as ts:
            result = await ts.call("get-stations", {"search": "paris"})
    assert api.token_requests == 1 and "echo" in result.data
    assert TrainTravel.TOKEN not in result.content
    assert TrainTravel.TOKEN not in str(result.data)
    # the settings' redactor (logs, spans, stored rows) knows the token too
    assert TrainTravel.TOKEN not in redactor_for(settings).scrub_text(f"x {TrainTravel.TOKEN} y")


def test_token_url_defaults_to_the_documents_client_credentials_flow() -> None:
    from pydantic import SecretStr

    from pilothouse.tools.config import OAuth2ClientCredentialsAuth

    auth = OAuth2ClientCredentialsAuth(
        type="oauth2_client_credentials", client_id="c", client_secret=SecretStr("s")
    )
    cred = build_credential(auth, "https://api.example.com", load_doc("train-travel-3.1.yaml"), "x")
    assert cred.token_url == "https://example.com/oauth/token"  # type: ignore[union-attr]


async def test_github_style_names_nullable_and_recursion() -> None:
    doc = load_doc("github-issues-excerpt-3.0.yaml")
    names = [op.name for op in operations(doc)]
    assert names == ["issues_list-for-repo", "issues_create", "issues_get", "repos_get"]
    async with SafeHttpClient() as client:
        (issue_get,) = tools_from_document(doc, base_url=None, client=client, names=["issues/get"])
    assert issue_get.base_url == "https://api.github.com"
    create = operations(doc)[1].parameters_schema()
    assert create["required"] == ["owner", "repo", "body"]
    label = load_doc("github-issues-excerpt-3.0.yaml").schema(
        {"$ref": "#/components/schemas/label"}, "/x", for_request=False
    )
    assert label["properties"]["color"]["type"] == ["string", "null"]
    repo = doc.schema({"$ref": "#/components/schemas/repository"}, "/x", for_request=False)
    nested = repo["properties"]["template_repository"]
    assert nested["anyOf"][1] == {"type": "null"}  # nullable without a type
    assert nested["anyOf"][0]["allOf"][0] == {
        "type": "object",
        "description": "(a nested repository, see above)",
    }


async def test_path_parameters_cannot_traverse(tmp_path: Path) -> None:
    seen: list[str] = []
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def anything(request: Request) -> JSONResponse:
        seen.append(request.scope["raw_path"].decode())
        return JSONResponse({})

    app = Starlette(routes=[Route("/{p:path}", anything)])
    with serve_app(app) as base:
        entry = {
            "openapi": str(DATA / "github-issues-excerpt-3.0.yaml"),
            "base_url": base,
            "allow_network": [f"127.0.0.1:{port_of(base)}"],
            "operations": ["repos/get"],
        }
        async with await load_tools([entry], tmp_path) as ts:
            bad = await ts.call("repos_get", {"owner": "..", "repo": "x"})
            assert bad.is_error and "cannot be '..'" in bad.content
            await ts.call("repos_get", {"owner": "a/../../admin", "repo": "x?y=1"})
    assert seen == ["/repos/a%2F..%2F..%2Fadmin/x%3Fy%3D1"]


async def test_large_responses_are_trimmed_to_the_budget(tmp_path: Path) -> None:
    store = Petstore(pets=300)
    with serve_app(store.app) as base:
        entry = {
            "openapi": str(DATA / "petstore-3.0.yaml"),
            "base_url": f"{base}/v3",
            "auth": {"type": "api_key", "value": "${env:K}"},
            "allow_network": [f"127.0.0.1:{port_of(base)}"],
            "result_budget": 2000,
        }
        async with await load_tools([entry], tmp_path, settings_with(tmp_path, K=API_KEY)) as ts:
            result = await ts.call("findPetsByStatus", {"status": "available"})
    assert len(result.content) <= 2000
    assert "result trimmed to fit" in result.content and "of 200 items" in result.content
    assert len(result.data) == 200  # the full value is kept for traces


def test_operations_without_operation_id_get_stable_names() -> None:
    text = """
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /pets/{petId}:
    get:
      parameters: [{name: petId, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: ok}}
  /v1/stock-levels.json:
    post:
      responses: {'200': {description: ok}}
"""
    first = [op.name for op in operations(parse_document(text, "t.yaml"))]
    second = [op.name for op in operations(parse_document(text, "t.yaml"))]
    assert first == second == ["get_pets_by_petId", "post_v1_stock-levels_json"]
    long = generated_name("get", "/" + "/".join(["segment"] * 12) + "/{id}")
    assert len(long) == 64 and long == generated_name(
        "get", "/" + "/".join(["segment"] * 12) + "/{id}"
    )


@pytest.mark.parametrize(
    ("mutate", "pointer", "fragment"),
    [
        (
            lambda d: d["paths"]["/pet/findByStatus"]["get"]["parameters"][0].update(
                {"in": "nowhere"}
            ),
            "/paths/~1pet~1findByStatus/get/parameters/0",
            "nowhere",
        ),
        (lambda d: d.pop("info"), "/", "'info' is a required property"),
        (
            lambda d: d["paths"]["/pet/{petId}"]["get"]["responses"].update(
                {"200": {"content": {}}}
            ),
            "/paths/~1pet~1{petId}/get/responses/200",
            "description",
        ),
        (
            lambda d: d["paths"]["/store/inventory"]["get"].update(
                {"parameters": [{"$ref": "https://evil.example/params.yaml#/p"}]}
            ),
            "/paths/~1store~1inventory/get/parameters/0/$ref",
            "points outside the document",
        ),
        (lambda d: d.update({"openapi": "4.0.0"}), "/openapi", "unsupported openapi version"),
    ],
)
def test_invalid_documents_name_the_json_pointer(mutate: Any, pointer: str, fragment: str) -> None:
    data = yaml.safe_load((DATA / "petstore-3.0.yaml").read_text())
    mutate(data)
    with pytest.raises(OpenAPIDocumentError) as info:
        parse_document(yaml.safe_dump(data), "petstore.yaml")
    assert info.value.pointer == pointer
    # jsonschema releases differ in how they quote names: compare quote-insensitively
    assert fragment.replace('"', "'") in str(info.value).replace('"', "'")
    assert str(info.value).startswith(f"petstore.yaml: invalid OpenAPI document at {pointer}")


def test_other_bad_documents() -> None:
    with pytest.raises(OpenAPIDocumentError, match=r"Swagger 2\.0"):
        parse_document('{"swagger": "2.0", "info": {}}', "s.json")
    with pytest.raises(OpenAPIDocumentError, match=r"not valid YAML or JSON \(line 2"):
        parse_document("openapi: 3.0.0\n  info: [unclosed", "bad.yaml")
    dangling = """
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /a:
    get:
      operationId: a
      parameters: [{$ref: '#/components/parameters/missing'}]
      responses: {'200': {description: ok}}
"""
    with pytest.raises(OpenAPIDocumentError) as info:
        operations(parse_document(dangling, "d.yaml"))
    assert info.value.pointer == "/paths/~1a/get/parameters/0/$ref"
    assert "'#/components/parameters/missing' does not resolve" in str(info.value)


async def test_a_document_url_on_a_private_address_is_refused(tmp_path: Path) -> None:
    store = Petstore()
    with serve_app(store.app) as base, pytest.raises(ToolConfigError, match="refused"):
        await load_tools([f"{base}/v3/openapi.json"], tmp_path)
    assert store.requests == []
