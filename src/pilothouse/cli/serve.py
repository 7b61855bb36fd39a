"""`pilothouse serve [PATH...]`: copilots and models over the OpenAI API, the gateway
routes and the management API, on one port."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import EXIT_FAILED, err, fail, out, run, settings
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.config import Settings

DEFAULT_PORT = 8642
"""Not 8000 (vLLM's), 8080 (llama.cpp server's), 11434 (Ollama's), 1234 (LM Studio's),
4000 (LiteLLM's) or 8321 (Llama Stack's): `pilothouse serve` runs beside them."""


def serve_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="copilot folders to serve (none: raw models and routes only)"),
    ] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to bind")] = DEFAULT_PORT,
    routes: Annotated[
        Path | None, typer.Option("--routes", help="gateway routes file (YAML)")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="serve without API keys (only on a loopback address)"),
    ] = False,
    allow_code_upload: Annotated[
        bool,
        typer.Option(
            "--allow-code-upload",
            help="let copilots uploaded through the API bring Python tools and MCP stdio "
            "commands (only if every copilots:write key is trusted with this account)",
        ),
    ] = False,
    grace: Annotated[
        int,
        typer.Option(min=0, help="seconds in-flight requests get to finish on shutdown"),
    ] = 30,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="one JSON line per request")
    ] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="trust X-Forwarded-For from these proxy addresses (comma-separated)",
        ),
    ] = None,
    flows: Annotated[
        list[Path] | None,
        typer.Option(
            "--flow",
            help="a Prompt flow folder (flow.dag.yaml) to serve as a model named after the "
            "folder; repeat for several",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="more logging")] = False,
) -> None:
    """Serve copilots (as OpenAI models), raw models and gateway routes, with keys."""
    from pilothouse.server.app import create_app
    from pilothouse.server.connections import ConnectionLimits, uvicorn_config
    from pilothouse.server.ops import GracefulServer
    from pilothouse.studio import install_studio

    config = settings()
    _logging(access_log, verbose)
    for path in paths or []:  # the first start embeds every document: show it
        run(_index(path))
    try:
        served = _flow_models(config, list(flows or []))
        first = None if no_auth else _first_key(config, host)
        try:
            app = create_app(
                config,
                copilots=list(paths or []),
                routes=routes,
                no_auth=no_auth,
                host=host,
                allow_code_upload=allow_code_upload or None,
                models=served,
            )
        except BaseException:
            if first is not None:  # never shown: nobody may hold it
                _revoke(config, first[1])
            raise
    except PilothouseError as exc:
        fail(exc)
    install_studio(app)
    first_key = first[0] if first is not None else None
    uv_config = uvicorn_config(
        app,
        limits=ConnectionLimits.of(config.server),
        host=host,
        port=port,
        loop="uvloop" if _has("uvloop") else "asyncio",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level="info" if verbose else "warning",
        timeout_graceful_shutdown=grace,
        server_header=False,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
    )
    server = GracefulServer(uv_config, app.context)
    if no_auth:
        err.print(f"[yellow]serving without API keys on {host} (--no-auth)[/]")
    base = f"http://{_url_host(host)}:{port}"
    err.print(f"Pilothouse on {base}/v1 (OpenAI API) and /docs (management API)")
    err.print(
        f"Studio: {base}/studio/ (sign in with an API key)"
        if not no_auth
        else f"Studio: {base}/studio/"
    )
    if first_key is not None:
        err.print(
            "No API keys existed: created an admin key for you (`pilothouse keys list` shows "
            "it as first-start). Store it now, it is not shown again; send it as "
            "`Authorization: Bearer KEY`:",
            markup=False,
        )
        out.print(first_key, markup=False, highlight=False)
    server.run()
    if not server.started:
        raise typer.Exit(EXIT_FAILED)  # the port is taken, or start-up failed


def _flow_models(config: Settings, folders: list[Path]) -> dict[str, Any]:
    """Each flow folder as a model named after the folder (folders given here are the
    operator's choice: their python nodes may run)."""
    from pilothouse.copilot.flow import Flow, FlowModel
    from pilothouse.storage.tracer import open_tracer

    models: dict[str, Any] = {}
    for folder in folders:
        flow = Flow.open(folder, config, tracer=open_tracer(config, background=True))
        models[flow.name] = FlowModel(flow, owns_tracer=True)
    return models


async def _index(path: Path) -> None:
    """Index a copilot's knowledge with progress before the server opens it (then it
    finds nothing changed); errors in the folder are reported by the server's own open."""
    from pilothouse.cli.copilot_run import open_copilot

    try:
        copilot = await open_copilot(path, None)
    except PilothouseError:
        return
    await copilot.aclose()


def _first_key(config: Settings, host: str) -> tuple[str, str] | None:
    """On the first start on a loopback address, with no API key yet: a new admin key
    and its id (printed once, stored hashed), so `pilothouse serve PATH` works as typed. On any
    other address the server refuses to start without a key made on purpose."""
    from pilothouse.server.app import is_loopback
    from pilothouse.server.keys import KeyStore

    if not is_loopback(host):
        return None
    with KeyStore.for_settings(config) as store:
        if store.count_active() > 0:
            return None
        key, record = store.create("first-start", ["admin"])
    return key, record.id


def _revoke(config: Settings, key_id: str) -> None:
    from pilothouse.server.keys import KeyStore

    with KeyStore.for_settings(config) as store:
        store.revoke(key_id)


def _logging(access_log: bool, verbose: bool) -> None:
    from pilothouse.server.ops import BufferedLineHandler

    logging.basicConfig(  # a server's log keeps every line (no one-line CLI handler)
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    access = logging.getLogger("pilothouse.access")
    access.propagate = False
    access.handlers.clear()
    if access_log:
        handler = BufferedLineHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
    else:
        access.setLevel(logging.WARNING)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
