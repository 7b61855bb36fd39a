"""Conformance suites, shipped with Pilothouse: one per backend family, so a backend
(built-in, test double or plugin) is added by passing its suite.

Each suite is a list of checks; a check that needs an optional capability the subject
lacks is skipped with the reason, every other one must pass. One call runs a suite:

    from pilothouse.testing.conformance import LOADERS, LoaderSubject

    report = await LOADERS.validate(lambda: LoaderSubject.of(MY_LOADER, sample=b"..."))
    report.raise_for_failures()

Suites: `CHAT_MODELS` (chat.py, chat_wire.py), `KNOWLEDGE_STORES`, `CONVERSATION_STORES`,
`TRACE_STORES`, `LOADERS`, `CONNECTORS`. See docs/plugins.md#conformance.
"""

from pilothouse.testing.conformance import chat_wire as _wire  # noqa: F401 - registers checks
from pilothouse.testing.conformance.chat import CHAT_MODELS, ChatSubject
from pilothouse.testing.conformance.chat_subjects import (
    ADAPTER_CAPABILITIES,
    HarnessSpec,
    ScriptSubject,
    VendorSubject,
    envelope_replay,
    replay,
    turns_of,
)
from pilothouse.testing.conformance.suite import Check, Report, Skipped, Suite, expect, run_check

__all__ = [
    "ADAPTER_CAPABILITIES",
    "CHAT_MODELS",
    "ChatSubject",
    "Check",
    "HarnessSpec",
    "Report",
    "ScriptSubject",
    "Skipped",
    "Suite",
    "VendorSubject",
    "envelope_replay",
    "expect",
    "replay",
    "run_check",
    "turns_of",
]
