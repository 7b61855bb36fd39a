"""What opening a copilot folder assembles besides the folder's definition: its chain
of models (`chain_ids`, `build_models`), its instructions loaded and checked
(`open_instructions`), and its tools (`load_copilot_tools`). `Copilot.open`
(copilot/copilot.py) and the CLI's checks of a copilot folder (cli/copilot_cmd.py) use
them.
"""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.copilot.prompt_settings import (
    PromptSettings,
    effective_settings,
    function_tool_error,
    missing_functions,
)
from pilothouse.copilot.prompting import Instructions
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import ResiliencePolicy, harden_chain
from pilothouse.models.registry import create_model
from pilothouse.tools.loader import load_tools
from pilothouse.tools.toolset import Toolset


def chain_ids(
    definition: CopilotDefinition, settings: Settings, override: str | list[str] | None = None
) -> tuple[str, ...]:
    """The model ids of a copilot's chain: `override`, else copilot.yaml's primary (or
    the default model) and its fallbacks."""
    if override:
        return (override,) if isinstance(override, str) else tuple(override)
    return (definition.model.primary or settings.default_model, *definition.model.fallbacks)


def open_instructions(
    definition: CopilotDefinition,
    folder: Path,
    settings: Settings,
    *,
    variants: bool = True,
    prompt: str | None = None,
) -> tuple[Instructions, PromptSettings]:
    """The copilot's instructions, loaded and checked now (a broken Prompty fails the
    open, not the first question), and the settings they merge into; `prompt`: a
    .prompty file every family gets instead (see Instructions)."""
    instructions = Instructions(
        definition, folder, settings.environ, variants=variants, prompt=prompt
    )
    instructions.check()
    prompty = instructions.base()
    return instructions, effective_settings(definition, prompty, settings.environ)


async def load_copilot_tools(
    definition: CopilotDefinition,
    folder: Path,
    settings: Settings,
    instructions: Instructions,
    prompt_settings: PromptSettings,
) -> tuple[Toolset, list[str]]:
    """copilot.yaml's tools, then the instructions Prompty's MCP and OpenAPI tools (a
    name copilot.yaml already has keeps copilot.yaml's tool); every function tool the
    Prompty declares must be one of them. Also: the names that came from the Prompty."""
    toolset = await load_tools(definition.tools, folder, settings, locate=definition.locate)
    prompty = instructions.base()
    added: list[str] = []
    if prompty is None:
        return toolset, added
    try:
        if prompt_settings.tool_entries:
            extra = await load_tools(
                list(prompt_settings.tool_entries),
                prompty.base_dir,
                settings,
                source=str(prompty.path),
            )
            extra.replace_tools(t for t in list(extra) if t.name not in toolset)
            added = extra.names
            toolset.extend(extra)
        for name in missing_functions(prompt_settings, toolset.names):
            raise function_tool_error(prompty, name)
    except BaseException:
        await toolset.aclose()
        raise
    return toolset, added


def build_models(ids: tuple[str, ...], settings: Settings, board: BreakerBoard) -> list[Model]:
    """The models of `ids`, hardened as one chain (retries, breakers of `board`, fallback)."""
    adapters = [create_model(model_id, settings) for model_id in ids]
    return harden_chain(adapters, ResiliencePolicy(), board)
