"""`pilothouse ask`: one question to a model (or a fallback chain of models), or to a
copilot when its folder comes first. The question may come from stdin; every ask is
stored as a run (`pilothouse runs`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from pilothouse.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    ApproveOption,
    configure_logging,
    err,
    fail,
    print_json,
    redactor,
    run,
    settings,
)
from pilothouse.cli.completion import (
    DEFINITION_FILE,
    complete_copilot_or_text,
    complete_model_id,
)
from pilothouse.errors import ConfigError, PilothouseError

if TYPE_CHECKING:
    from pilothouse.copilot.traced_model import TracedModel
    from pilothouse.types import ModelRequest, ModelResponse


def _footer(response: ModelResponse, run_id: str) -> None:
    usage = response.usage
    cost = f" · ${response.cost_usd:.6f}" if response.cost_usd else ""
    cached = f" ({usage.cached_tokens} cached)" if usage.cached_tokens else ""
    err.print(
        f"{response.model} · {usage.input_tokens}{cached} in / {usage.output_tokens} out"
        f" · {response.latency_s:.2f}s{cost} · run {run_id[:12]}",
        style="dim",
        markup=False,
    )


def response_json(response: ModelResponse | None, run_id: str, error: str | None) -> dict[str, Any]:
    """A plain model answer as `ask --json` prints it."""
    return {
        "status": "failed" if error else "completed",
        "text": response.text if response else "",
        "model": response.model if response else None,
        "run_id": run_id,
        "usage": {
            "input_tokens": response.usage.input_tokens if response else 0,
            "output_tokens": response.usage.output_tokens if response else 0,
            "cached_tokens": response.usage.cached_tokens if response else 0,
        },
        "cost_usd": response.cost_usd if response else None,
        "finish_reason": response.finish_reason if response else None,
        "error": error,
    }


async def _ask(
    request: ModelRequest, model_ids: list[str], stream: bool, quiet: bool, as_json: bool
) -> int:
    from pilothouse.cli.copilot_run import spinner
    from pilothouse.copilot.traced_model import TracedModel
    from pilothouse.models.compose import build_model
    from pilothouse.storage.tracer import open_tracer
    from pilothouse.tracing import attributes as A

    config = settings()
    ids = model_ids or [config.default_model]
    inner = build_model(ids, config)  # the process's breakers; a wrong id fails here
    tracer = open_tracer(config)
    model = TracedModel(inner, tracer)
    response: ModelResponse | None = None
    error: str | None = None
    run_id = ""
    try:
        with tracer.span(f"ask {ids[0]}", kind="run") as span:
            run_id = span.trace_id
            span.set(A.RUN_QUESTION, request.messages[-1].text)
            with spinner("reading the prompt…", enabled=not as_json) as stop:
                if stream and not as_json:
                    response, error = await _stream(model, request, stop)
                else:
                    response = await model.complete(request)
                    stop()
                    if not as_json:
                        sys.stdout.write(response.text + "\n")
            if response is not None:
                span.set(A.RUN_ANSWER, response.text)
            if error is not None:
                span.fail(error)
    except PilothouseError as exc:  # the run is stored as failed; then the message
        if not as_json:
            raise
        error = redactor().scrub_text(str(exc))
    finally:
        await model.aclose()
        tracer.close()
    sys.stdout.flush()
    if as_json:
        print_json(response_json(response, run_id, error))
    elif response is not None and not quiet and error is None:
        _footer(response, run_id)
    return EXIT_FAILED if error else EXIT_OK


async def _stream(
    model: TracedModel, request: ModelRequest, stop: Any
) -> tuple[ModelResponse | None, str | None]:
    from pilothouse.types import StreamEnd, StreamError, TextDelta

    async for event in model.stream(request):
        stop()
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, StreamEnd):
            sys.stdout.write("\n")
            return event.response, None
        elif isinstance(event, StreamError):
            sys.stdout.write("\n")
            message = redactor().scrub_text(str(event.error))
            err.print(f"error: the answer broke off: {message}", style="bold red", markup=False)
            return event.partial, message
    return None, "the stream ended without an answer"


def read_question(words: list[str], stdin: TextIO) -> tuple[Path | None, str]:
    """The copilot folder (or None) and the question, from the arguments and stdin.

    `-` as the question reads it from stdin; piped input with a question puts the
    input first and the question after it (`cat notes.txt | pilothouse ask "Summarise"`);
    piped input alone is the question."""
    piped = "" if stdin.isatty() else stdin.read()
    folder: Path | None = None
    if len(words) == 2 or (len(words) == 1 and _is_copilot(words[0]) and piped.strip()):
        folder, words = Path(words[0]), words[1:]
    if len(words) > 1:
        raise ConfigError(
            "give a question, or a copilot folder and a question; quote a question of "
            'several words: pilothouse ask "How do I reset my password?"'
        )
    given = words[0] if words else "-"
    if given == "-":
        question = piped
    elif piped.strip():
        question = f"{piped.rstrip()}\n\n{given}"
    else:
        question = given
    if not question.strip():
        raise ConfigError(
            'no question: give one as an argument, or pipe it in (echo "Hello?" | pilothouse ask -)'
        )
    return folder, question


def _is_copilot(word: str) -> bool:
    return (Path(word) / DEFINITION_FILE).is_file()


def ask(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help='QUESTION, or COPILOT_FOLDER QUESTION to ask a copilot; "-" or none '
            "reads the question from stdin",
            metavar="[COPILOT] [QUESTION]",
            show_default=False,
            autocompletion=complete_copilot_or_text,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="model id (provider:model); repeat for a fallback chain, tried in order",
            autocompletion=complete_model_id,
        ),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="system prompt")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print the answer as it comes")] = False,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="most output tokens")] = None,
    approve: ApproveOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the answer, model, usage and run id as JSON")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="answer only, no footer")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log failovers")] = False,
) -> None:
    """Ask a model a question (the default model is the embedded local one), or a
    copilot when its folder comes first: `pilothouse ask helpdesk "How do I ...?"`.

    Exit codes: 0 answered, 1 failed, 2 wrong usage or configuration, 3 paused for
    approval (decide with `pilothouse approve`)."""
    configure_logging(verbose)
    try:
        folder, question = read_question(list(words or []), sys.stdin)
    except ConfigError as exc:
        fail(exc)
    if folder is not None:
        from pilothouse.cli.copilot_run import ask_copilot

        code = run(
            ask_copilot(
                folder, question, list(model or []), quiet=quiet, approve=approve, as_json=as_json
            )
        )
        raise typer.Exit(code)
    from pilothouse.types import Message, ModelRequest

    messages = ([Message.system(system)] if system else []) + [Message.user(question)]
    request = ModelRequest(tuple(messages), temperature=temperature, max_output_tokens=max_tokens)
    raise typer.Exit(run(_ask(request, list(model or []), stream, quiet, as_json)))
