"""Who is calling: the key's id, name and scopes, and what this server lets a key do
at all (keys on or `--no-auth`, uploads, uploaded code). The Studio asks this first,
to show only what the key may use; any key may ask about itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pilothouse.server.auth import principal_of
from pilothouse.server.management.errors import responses
from pilothouse.server.management.state import context_of

router = APIRouter(tags=["caller"])


class CallerOut(BaseModel):
    key_id: str | None = Field(description="the key's id (never the key); None under --no-auth")
    name: str
    scopes: list[str] = Field(description="`admin` implies every scope")
    auth: bool = Field(description="whether the server checks keys (false under --no-auth)")
    uploads: bool = Field(
        description="whether uploads (copilots, knowledge files) are accepted at all: not "
        "under --no-auth"
    )
    code_upload: bool = Field(
        description="whether an uploaded copilot may bring code (Python tools, MCP stdio "
        "commands): `--allow-code-upload`"
    )


@router.get(
    "/me",
    operation_id="getCaller",
    summary="The calling key: its id, name and scopes, and what the server allows",
    response_model=CallerOut,
    responses=responses(401, 429),
)
async def get_caller(request: Request) -> CallerOut:
    principal = principal_of(request)
    context = context_of(request)
    return CallerOut(
        key_id=principal.key_id,
        name=principal.name,
        scopes=sorted(principal.scopes),
        auth=context.auth.enabled,
        uploads=context.auth.enabled,
        code_upload=context.copilots.code_policy.allow_code,
    )
