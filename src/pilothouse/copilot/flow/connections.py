"""Prompt flow connections mapped to Pilothouse model ids by a small file the user
edits, `connections.yaml` in the flow folder:

    # Prompt flow connection -> Pilothouse model id
    open_ai_connection: openai:gpt-4.1-mini
    azure_open_ai_connection:          # by deployment (the node's deployment_name/model)
      gpt-35-turbo: azure:gpt-35-turbo
      default: local:qwen2.5-coder-1.5b
    default: local:qwen2.5-coder-1.5b  # any connection not listed

Connections hold keys in Prompt flow; for llm nodes the keys here are Pilothouse's own
(`pilothouse keys set`, environment variables), so the file holds no secret.

A python node that takes a connection object (`conn: CustomConnection`, the node's input
a connection's name) finds it here, written as Prompt flow's connection YAML writes it,
its secrets read from the environment:

    my_custom_connection:
      type: custom                     # custom | open_ai | azure_open_ai | ...
      configs: {api_base: https://search.example.com}
      secrets: {api_key: ${env:SEARCH_KEY}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pilothouse.copilot.flow.definition import FlowError, Node
from pilothouse.copilot.prompty.errors import PromptyReferenceError
from pilothouse.copilot.prompty.references import resolve_env_value
from pilothouse.util.yaml_limits import load_yaml

CONNECTIONS_FILE = "connections.yaml"


@dataclass(frozen=True)
class ConnectionMap:
    file: Path | None = None
    entries: Mapping[str, Any] = field(default_factory=dict)
    override: str | None = None
    """A model id for every LLM node (`-m`), whatever the file says."""

    @classmethod
    def load(cls, folder: Path, override: str | None = None) -> ConnectionMap:
        file = folder / CONNECTIONS_FILE
        if not file.is_file():
            return cls(None, {}, override)
        try:
            data = load_yaml(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise FlowError(f"{file}: not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise FlowError(f"{file}:1: expected `connection name: provider:model` lines")
        return cls(file, {str(k): v for k, v in data.items()}, override)

    def is_object(self, name: str) -> bool:
        """Whether `name` is a connection object (a mapping with `type:`) for python nodes."""
        entry = self.entries.get(name)
        return isinstance(entry, Mapping) and "type" in entry

    def settings_of(self, name: str, environ: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """A connection object's type and its settings (configs, secrets and top-level
        keys as Prompt flow's connection classes expose them), `${env:}` resolved."""
        entry = self.entries[name]
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if key in ("configs", "secrets") and isinstance(value, Mapping):
                values.update({str(k): v for k, v in value.items()})
            elif key not in ("type", "name", "$schema", "module"):
                values[str(key)] = value
        for key, value in values.items():
            if isinstance(value, str):
                try:
                    values[key] = resolve_env_value(value, environ, keep_unset=False)
                except PromptyReferenceError as exc:
                    raise FlowError(f"{self.file}: {name}.{key}: {exc.detail}") from None
        return str(entry["type"]), values

    def model_for(self, node: Node, deployment: str | None, flow_file: Path) -> str:
        """The model id that answers `node`."""
        if self.override:
            return self.override
        entry = self.entries.get(node.connection or "", self.entries.get("default"))
        if isinstance(entry, Mapping):
            entry = entry.get(deployment or "", entry.get("default"))
        if isinstance(entry, str) and ":" in entry:
            return entry
        where = self.file or flow_file.parent / CONNECTIONS_FILE
        connection = node.connection or "(none)"
        raise FlowError(
            f"{flow_file}:{node.line}: nodes.{node.name}: the connection {connection!r}"
            f"{f' (deployment {deployment!r})' if deployment else ''} is not mapped to a "
            f"Pilothouse model; add `{connection}: provider:model` to {where}, or run "
            "with -m MODEL"
        )
