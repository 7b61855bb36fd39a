"""Prompty files of all three generations: load, normalise, render into messages.

See docs/prompty.md. The runtime needs `load_prompty`, `Prompty.render`,
`Prompty.definition` and `variant_path`.
"""

from .definition import (
    ConnectionSpec,
    Generation,
    ModelOptions,
    ModelSpec,
    PromptDefinition,
    PromptTool,
    TemplateSpec,
    ToolBinding,
)
from .detection import detect_generation
from .document import PromptyDocument
from .errors import PromptyError, PromptyInputError, PromptyReferenceError, PromptyRenderError
from .loader import Prompty, dump_prompty, load_prompty, parse_prompty, variant_path
from .parse import split_messages
from .properties import MISSING, PropertySpec

__all__ = [
    "MISSING",
    "ConnectionSpec",
    "Generation",
    "ModelOptions",
    "ModelSpec",
    "PromptDefinition",
    "PromptTool",
    "Prompty",
    "PromptyDocument",
    "PromptyError",
    "PromptyInputError",
    "PromptyReferenceError",
    "PromptyRenderError",
    "PropertySpec",
    "TemplateSpec",
    "ToolBinding",
    "detect_generation",
    "dump_prompty",
    "load_prompty",
    "parse_prompty",
    "split_messages",
    "variant_path",
]
