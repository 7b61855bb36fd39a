"""Conformance suites, shipped with Pilothouse: one per backend family, so a backend
(built-in, test double or plugin) is added by passing its suite.

Each suite is a list of checks; a check that needs an optional capability the subject
lacks is skipped with the reason, every other one must pass. One call runs a suite:

    from pilothouse.testing.conformance import LOADERS, LoaderSubject

    @asynccontextmanager
    async def subject():
        yield LoaderSubject(MY_LOADER, sample=SAMPLE_BYTES, expect_text="first paragraph")

    report = await LOADERS.validate(subject)
    report.raise_for_failures()

Suites: `CHAT_MODELS` (chat.py, chat_wire.py), `KNOWLEDGE_STORES`,
`CONVERSATION_STORES`, `PAUSED_RUN_STORES`, `TRACE_STORES`, `EVAL_STORES`,
`PROMOTION_STORES`, `KEY_STORES`, `RATE_LIMITERS`, `COPILOT_FOLDER_STORES`, `LOADERS`,
`CONNECTORS`. Under pytest, one test per check: parametrize over
`SUITE.checks_for(capabilities)` and `await run_check(check, subject)`. See
docs/plugins.md#conformance-suites.
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
from pilothouse.testing.conformance.connectors import CONNECTORS, ConnectorSubject, Listing
from pilothouse.testing.conformance.conversation_store import CONVERSATION_STORES
from pilothouse.testing.conformance.copilot_folder_store import COPILOT_FOLDER_STORES
from pilothouse.testing.conformance.eval_store import EVAL_STORES
from pilothouse.testing.conformance.key_store import KEY_STORES, RATE_LIMITERS
from pilothouse.testing.conformance.knowledge_store import KNOWLEDGE_STORES
from pilothouse.testing.conformance.loaders import LOADERS, LoaderSubject
from pilothouse.testing.conformance.paused_run_store import PAUSED_RUN_STORES
from pilothouse.testing.conformance.promotion_store import PROMOTION_STORES
from pilothouse.testing.conformance.stores import StoreSubject
from pilothouse.testing.conformance.suite import Check, Report, Skipped, Suite, expect, run_check
from pilothouse.testing.conformance.trace_store import TRACE_STORES

__all__ = [
    "ADAPTER_CAPABILITIES",
    "CHAT_MODELS",
    "CONNECTORS",
    "CONVERSATION_STORES",
    "COPILOT_FOLDER_STORES",
    "EVAL_STORES",
    "KEY_STORES",
    "KNOWLEDGE_STORES",
    "LOADERS",
    "PAUSED_RUN_STORES",
    "PROMOTION_STORES",
    "RATE_LIMITERS",
    "TRACE_STORES",
    "ChatSubject",
    "Check",
    "ConnectorSubject",
    "HarnessSpec",
    "Listing",
    "LoaderSubject",
    "Report",
    "ScriptSubject",
    "Skipped",
    "StoreSubject",
    "Suite",
    "VendorSubject",
    "envelope_replay",
    "expect",
    "replay",
    "run_check",
    "turns_of",
]
