"""Prompt flow's `flow.dag.yaml` flows, loaded and run on any Pilothouse model (see
docs/migrating.md): the definition, the runner, the connection map and the flow as a
model for `pilothouse serve`."""

from pilothouse.copilot.flow.connections import ConnectionMap
from pilothouse.copilot.flow.data import read_rows
from pilothouse.copilot.flow.definition import FlowDefinition, FlowError
from pilothouse.copilot.flow.model import FlowModel
from pilothouse.copilot.flow.reader import load_flow_definition
from pilothouse.copilot.flow.runner import Flow, FlowResult, TestReport

__all__ = [
    "ConnectionMap",
    "Flow",
    "FlowDefinition",
    "FlowError",
    "FlowModel",
    "FlowResult",
    "TestReport",
    "load_flow_definition",
    "read_rows",
]
