"""`pilothouse ask`: one question to a model (or a fallback chain of models)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pilothouse.cli.chat import ask_copilot
from pilothouse.cli.common import configure_logging, err, fail, run, settings
from pilothouse.errors import ConfigError
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import build_model
from pilothouse.types import Message, ModelRequest, ModelResponse, StreamEnd, StreamError, TextDelta


def _footer(response: ModelResponse) -> None:
    usage = response.usage
    cost = f" · ${response.cost_usd:.6f}" if response.cost_usd else ""
    cached = f" ({usage.cached_tokens} cached)" if usage.cached_tokens else ""
    err.print(
        f"[dim]{response.model} · {usage.input_tokens}{cached} in / {usage.output_tokens} out"
        f" · {response.latency_s:.2f}s{cost}[/]"
    )


async def _ask(request: ModelRequest, model_ids: list[str], stream: bool, quiet: bool) -> int:
    config = settings()
    model = build_model(model_ids or [config.default_model], config, board=BreakerBoard())
    try:
        if not stream:
            response = await model.complete(request)
            sys.stdout.write(response.text + "\n")
            sys.stdout.flush()
            if not quiet:
                _footer(response)
            return 0
        async for event in model.stream(request):
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, StreamEnd):
                sys.stdout.write("\n")
                if not quiet:
                    _footer(event.response)
            elif isinstance(event, StreamError):
                sys.stdout.write("\n")
                err.print(f"[bold red]error:[/] the answer broke off: {event.error}")
                return 1
        return 0
    finally:
        await model.aclose()


def ask(
    words: Annotated[
        list[str],
        typer.Argument(
            help="QUESTION, or COPILOT_FOLDER QUESTION to ask a copilot",
            metavar="[COPILOT] QUESTION",
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="model id (provider:model); repeat for a fallback chain, tried in order",
        ),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="system prompt")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print the answer as it comes")] = False,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="most output tokens")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="answer only, no footer")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log failovers")] = False,
) -> None:
    """Ask a model a question (the default model is the embedded local one), or a
    copilot when its folder comes first: `pilothouse ask helpdesk "How do I ...?"`."""
    configure_logging(verbose)
    if len(words) == 2:
        code = run(ask_copilot(Path(words[0]), words[1], list(model or []), quiet))
        raise typer.Exit(code)
    if len(words) != 1:
        fail(ConfigError("give a question, or a copilot folder and a question (quote it)"))
    question = words[0]
    messages = ([Message.system(system)] if system else []) + [Message.user(question)]
    request = ModelRequest(tuple(messages), temperature=temperature, max_output_tokens=max_tokens)
    raise typer.Exit(run(_ask(request, list(model or []), stream, quiet)))
