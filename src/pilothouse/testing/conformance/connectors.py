"""The connector suite: a connector's tools against a fake of its vendor's API. Tools
are well formed, writes ask for approval, a listing follows every page, error
statuses and rate limits come back as results that say what happened, and no
credential shows in a result, an error or a log line.

    subject = ConnectorSubject(tools, probe=("jira_get_issue", {"issue_key": "OPS-1"}),
                               fail_next=..., requests=..., secrets=(TOKEN,))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pilothouse.testing.conformance.suite import Suite
from pilothouse.tools.base import NAME_PATTERN
from pilothouse.tools.results import ToolResult
from pilothouse.tools.toolset import Toolset

CONNECTORS: Suite[ConnectorSubject] = Suite(
    "connectors", "tool specs, approvals, paging, error statuses, rate limits, secrets"
)

PAGING = "paging"  # `listing` names a read that spans several pages
RETRIES = "retries"  # a 429 with a short Retry-After is retried once

FailNext = Callable[[int, Mapping[str, str], int], None]
"""(status, headers, times): the fake's next `times` answers are this error, in the
vendor's own error format."""


@dataclass
class Listing:
    """A read that spans several pages: the tool, its arguments, how many items the
    fake holds, and how to count the items in the tool's structured result."""

    tool: str
    arguments: dict[str, Any]
    expected: int
    count: Callable[[Any], int]


@dataclass
class ConnectorSubject:
    tools: Toolset
    probe: tuple[str, dict[str, Any]]
    """A read-only call that succeeds against the fake."""
    fail_next: FailNext
    requests: Callable[[], int]
    """How many requests the fake has received so far."""
    secrets: tuple[str, ...]
    """The credential values: none may appear in a result, an error or a log line."""
    recover: Callable[[], None]
    """Drop the failures still queued at the fake."""
    listing: Listing | None = None
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({PAGING, RETRIES}))

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        return await self.tools.call(name, arguments, approved=True)

    def assert_no_secret(self, text: str, where: str) -> None:
        for secret in self.secrets:
            assert secret not in text, f"a credential shows in {where}"


@contextmanager
def _logs() -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@CONNECTORS.check()
async def check_tools_are_well_formed(subject: ConnectorSubject) -> None:
    """Every tool has a valid name, a description and a JSON Schema object for its
    arguments."""
    assert len(subject.tools), "no tools"
    for tool in subject.tools:
        spec = tool.spec()
        assert NAME_PATTERN.match(spec.name), spec.name
        assert spec.description.strip(), f"{spec.name} has no description"
        jsonschema.Draft202012Validator.check_schema(spec.parameters)
        assert spec.parameters.get("type") == "object", f"{spec.name}: arguments not an object"


@CONNECTORS.check()
async def check_writes_need_approval(subject: ConnectorSubject) -> None:
    """A tool that changes data is not read-only and asks for approval by default."""
    for tool in subject.tools:
        if not tool.read_only:
            assert tool.requires_approval, f"{tool.name} writes without approval"


@CONNECTORS.check(PAGING)
async def check_a_listing_follows_every_page(subject: ConnectorSubject) -> None:
    """A listing that spans several pages returns every item."""
    listing = subject.listing
    assert listing is not None, "declare `listing` for the paging capability"
    before = subject.requests()
    result = await subject.call(listing.tool, listing.arguments)
    assert not result.is_error, result.content
    assert listing.count(result.data) == listing.expected
    assert subject.requests() - before > 1, "one request: the items did not span pages"


@CONNECTORS.check()
async def check_error_statuses_come_back_as_results_that_say_so(
    subject: ConnectorSubject,
) -> None:
    """401, 403, 404 and 5xx come back as error results (not exceptions) that name the
    status and say what to do; the run goes on."""
    name, arguments = subject.probe
    for status in (401, 403, 404, 500, 503):
        subject.fail_next(status, {}, 5)  # more than any retry policy tries
        result = await subject.call(name, arguments)
        subject.recover()
        assert result.is_error, f"HTTP {status} came back as a success"
        assert str(status) in result.content, f"HTTP {status}: {result.content!r}"
        subject.assert_no_secret(result.content, f"the {status} error")
    assert not (await subject.call(name, arguments)).is_error, "the fake did not recover"


@CONNECTORS.check(RETRIES)
async def check_a_short_rate_limit_is_retried(subject: ConnectorSubject) -> None:
    """A 429 with a short Retry-After is waited for and retried once."""
    name, arguments = subject.probe
    before = subject.requests()
    subject.fail_next(429, {"Retry-After": "0"}, 1)
    result = await subject.call(name, arguments)
    assert not result.is_error, result.content
    assert subject.requests() - before >= 2


@CONNECTORS.check()
async def check_a_long_rate_limit_says_how_long_to_wait(subject: ConnectorSubject) -> None:
    """A 429 with a long Retry-After is not waited for: the result says rate limited and
    how long."""
    name, arguments = subject.probe
    subject.fail_next(429, {"Retry-After": "120"}, 5)
    result = await subject.call(name, arguments)
    subject.recover()
    assert result.is_error and "429" in result.content, result.content
    assert "120" in result.content, f"the wait is not given: {result.content!r}"


@CONNECTORS.check()
async def check_no_credential_in_results_errors_or_logs(subject: ConnectorSubject) -> None:
    """Across a success and failures, no credential shows in a result or a log line."""
    name, arguments = subject.probe
    with _logs() as lines:
        contents = [(await subject.call(name, arguments)).content]
        for status in (401, 429, 502):
            subject.fail_next(status, {"Retry-After": "0"} if status == 429 else {}, 5)
            contents.append((await subject.call(name, arguments)).content)
            subject.recover()
    for content in contents:
        subject.assert_no_secret(content, "a tool result")
    for line in lines:
        subject.assert_no_secret(line, "a log line")
