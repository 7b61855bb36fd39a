"""Copilots: definitions, prompts, and the runtime that composes models, knowledge and tools."""

from pilothouse.copilot.copilot import Copilot, final_answer
from pilothouse.copilot.definition import CopilotDefinition, load_definition
from pilothouse.copilot.events import Answer, Citation, RunEvent
from pilothouse.copilot.tool_runner import ClientTools, Decision

__all__ = [
    "Answer",
    "Citation",
    "ClientTools",
    "Copilot",
    "CopilotDefinition",
    "Decision",
    "RunEvent",
    "final_answer",
    "load_definition",
]
