"""The model layer: one interface over every provider, and models composed of models."""

from pilothouse.models.base import Model, ProtocolModel, collect
from pilothouse.models.profiles import ModelProfile, profile_for
from pilothouse.models.readiness import readiness
from pilothouse.models.registry import create_model, register_protocol
from pilothouse.models.testing import BreakAfter, FunctionModel, ScriptedModel, tool_call

__all__ = [
    "BreakAfter",
    "FunctionModel",
    "Model",
    "ModelProfile",
    "ProtocolModel",
    "ScriptedModel",
    "collect",
    "create_model",
    "profile_for",
    "readiness",
    "register_protocol",
    "tool_call",
]
