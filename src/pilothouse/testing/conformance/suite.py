"""The machinery every conformance suite shares: checks that declare the capabilities
they need, a suite that runs them against a subject, and the report.

A *subject* is what a suite checks (a model, a store, a loader, ...) wrapped with its
`capabilities`: the optional behaviours it declares or that were detected. A check
that needs a capability the subject lacks is skipped, with the reason; every other
check must pass. Checks raise `AssertionError` (or any exception) on failure.

One call runs a suite: `report = await SUITE.validate(make_subject)`, where
`make_subject()` is an async context manager that gives a fresh subject per check.
`report.raise_for_failures()` fails with every problem at once. Under pytest, one test
per check (`SUITE.checks` as parameters) with `await run_check(check, subject)` gives
a test result per behaviour; pytest is never imported otherwise.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Subject(Protocol):
    @property
    def capabilities(self) -> frozenset[str]: ...


S = TypeVar("S", bound=Subject)
E = TypeVar("E", bound=BaseException)


class Skipped(Exception):
    """A check does not apply to this subject (a capability it lacks)."""


@dataclass(frozen=True, slots=True)
class Check(Generic[S]):
    """One behaviour. `requires` names the capabilities it needs (empty: required of
    every subject)."""

    name: str
    func: Callable[[S], Awaitable[None]]
    requires: frozenset[str] = frozenset()
    description: str = ""

    def __str__(self) -> str:
        return self.name

    @property
    def required(self) -> bool:
        return not self.requires

    def missing(self, subject: S) -> frozenset[str]:
        return self.requires - subject.capabilities

    def applies(self, capabilities: frozenset[str]) -> bool:
        return self.requires <= capabilities

    async def __call__(self, subject: S) -> None:
        """Run the check; `Skipped` when the subject lacks a capability it needs."""
        missing = self.missing(subject)
        if missing:
            raise Skipped(f"{self.name} needs {', '.join(sorted(missing))}")
        await self.func(subject)


@dataclass(slots=True)
class Report:
    """What a suite found: the checks that passed, failed (with the error) and were
    skipped (with the reason)."""

    suite: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [
            f"{self.suite}: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
        ]
        lines += [f"  FAILED {name}: {error}" for name, error in self.failed]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if self.failed:
            raise AssertionError(str(self))


class Suite(Generic[S]):
    """A named list of checks, registered with the `check` decorator."""

    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description
        self.checks: list[Check[S]] = []

    def check(
        self, *requires: str
    ) -> Callable[[Callable[[S], Awaitable[None]]], Callable[[S], Awaitable[None]]]:
        """Register an async function `(subject) -> None` as a check needing `requires`."""

        def register(func: Callable[[S], Awaitable[None]]) -> Callable[[S], Awaitable[None]]:
            doc = (func.__doc__ or "").strip().splitlines()
            name = func.__name__.removeprefix("check_")
            self.checks.append(Check(name, func, frozenset(requires), doc[0] if doc else ""))
            return func

        return register

    def ids(self) -> list[str]:
        return [check.name for check in self.checks]

    def checks_for(self, capabilities: frozenset[str]) -> list[Check[S]]:
        """The checks a subject with these capabilities must pass."""
        return [check for check in self.checks if check.applies(capabilities)]

    def capabilities(self) -> frozenset[str]:
        """Every optional capability some check of the suite needs."""
        return frozenset().union(*(check.requires for check in self.checks))

    async def validate(
        self,
        make_subject: Callable[[], AbstractAsyncContextManager[S]],
        *,
        only: set[str] | None = None,
    ) -> Report:
        """Run every check (or those named in `only`), each on a fresh subject."""
        report = Report(self.name)
        for check in self.checks:
            if only is not None and check.name not in only:
                continue
            try:
                async with make_subject() as subject:
                    await check(subject)
            except Skipped as skip:
                report.skipped.append((check.name, str(skip)))
            except Exception as exc:  # a check fails in any way; the others still run
                where = traceback.extract_tb(exc.__traceback__)[-1]
                detail = f"{type(exc).__name__}: {exc}".strip()
                report.failed.append((check.name, f"{detail} ({where.filename}:{where.lineno})"))
            else:
                report.passed.append(check.name)
        return report


async def run_check(check: Check[S], subject: S) -> None:
    """Run one check under pytest: a skip becomes `pytest.skip` (pytest is imported only
    here, so the suites import without it)."""
    try:
        await check(subject)
    except Skipped as skip:
        import pytest

        pytest.skip(str(skip))


@dataclass(slots=True)
class Caught(Generic[E]):
    value: E | None = None


@contextmanager
def expect(kind: type[E], match: str | None = None) -> Iterator[Caught[E]]:
    """`with expect(SomeError) as caught:` fails unless the block raises `kind` (whose
    text contains `match`); `caught.value` is the error. Like `pytest.raises`, without
    pytest."""
    caught: Caught[E] = Caught()
    try:
        yield caught
    except kind as exc:
        if match is not None and match not in str(exc):
            raise AssertionError(
                f"{type(exc).__name__} {str(exc)!r} does not say {match!r}"
            ) from exc
        caught.value = exc
        return
    raise AssertionError(f"expected {kind.__name__}, nothing was raised")
