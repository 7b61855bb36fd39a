"""`pilothouse run FILE.prompty --input k=v ... [-m MODEL]`: render a Prompty and run it
on any model, streaming the answer; structured output is parsed and printed as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import EXIT_OK, EXIT_USAGE, err, fail, print_json, run, settings
from pilothouse.cli.completion import complete_model_id
from pilothouse.errors import ConfigError, PilothouseError

if TYPE_CHECKING:
    from pilothouse.copilot.prompty import Prompty
    from pilothouse.copilot.prompty_runner import PromptyResult


def parse_inputs(prompty: Prompty | None, pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs as inputs: text for text inputs (and undeclared ones), JSON for the
    others (`top=3`, `tags=["a","b"]`), falling back to the text when it is not JSON."""
    kinds = {p.name: p.kind for p in prompty.definition.inputs} if prompty else {}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--input {pair!r}: write NAME=VALUE (e.g. --input question=Hi)")
        key = key.strip()
        value: Any = raw
        if kinds.get(key, "string") not in ("string", "image"):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        values[key] = value
    return values


def run_command(
    file: Annotated[Path, typer.Argument(help="the .prompty file", exists=False)],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="an input as NAME=VALUE; repeat for each"),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="model id; default: the file's own model mapped to a Pilothouse id, else "
            "the default model",
            autocompletion=complete_model_id,
        ),
    ] = None,
    render: Annotated[
        bool, typer.Option("--render", help="print the rendered messages; call no model")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the text, output, model and usage as JSON")
    ] = False,
) -> None:
    """Render a Prompty file (any generation) and run it: the answer streams to stdout;
    a file with outputs (structured output) prints the parsed JSON. Generation A's
    `sample` inputs fill the inputs not given."""
    from pilothouse.copilot.prompty import PromptyError, load_prompty
    from pilothouse.copilot.prompty_runner import model_for, with_sample
    from pilothouse.types import message_to_dict

    config = settings()
    try:
        prompty = load_prompty(file, environ=config.environ)
        values = with_sample(prompty, parse_inputs(prompty, list(inputs or [])))
        if render:
            print_json([message_to_dict(m) for m in prompty.render(values)])
            return
        model_id = model_for(prompty, model, config)
        result = run(_run(prompty, values, model_id, stream=not as_json))
    except PromptyError as exc:  # the file is wrong: a configuration error
        fail(exc, EXIT_USAGE)
    except PilothouseError as exc:
        fail(exc)
    if as_json:
        print_json(
            {
                "text": result.text,
                "output": result.output,
                "model": result.model,
                "usage": {
                    "input_tokens": result.usage.input_tokens,
                    "output_tokens": result.usage.output_tokens,
                },
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in result.tool_calls
                ],
            }
        )
    elif result.output is not None:
        print_json(result.output)
    elif result.tool_calls:
        err.print("the model called tools this run has no implementation for:", markup=False)
        print_json([{"name": c.name, "arguments": c.arguments} for c in result.tool_calls])
    raise typer.Exit(EXIT_OK)


async def _run(
    prompty: Prompty, values: dict[str, Any], model_id: str, *, stream: bool
) -> PromptyResult:
    from pilothouse.copilot.prompt_settings import prompty_output_schema
    from pilothouse.copilot.prompty_runner import stream_prompty
    from pilothouse.types import TextDelta

    structured = prompty_output_schema(prompty) is not None
    async for item in stream_prompty(prompty, values, model=model_id):
        if isinstance(item, TextDelta):
            if stream and not structured:
                sys.stdout.write(item.text)
                sys.stdout.flush()
        else:
            if stream and not structured and item.text:
                sys.stdout.write("\n")
            return item
    raise PilothouseError("the run ended without a result")
