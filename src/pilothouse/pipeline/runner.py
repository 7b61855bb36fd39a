"""The eval runner: a copilot's suites on each model, through the real runtime.

Arms (one per model and prompt-variant setting) run one after the other; within an
arm, cases run concurrently, at most `concurrency` at a time, pulled lazily from the
suites, so memory does not grow with the suite. Each finished case is scored and
written at once (storage/evals.py); `resume` runs only what is not stored yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.definition import CopilotDefinition, load_definition
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.knowledge.embeddings import Embedder
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import build_model
from pilothouse.pipeline.execute import CaseOutcome, run_case
from pilothouse.pipeline.judge import Judge, load_rubrics
from pilothouse.pipeline.metrics import PASS, CaseContext, Metric, Services, all_metrics, scores_of
from pilothouse.pipeline.suite import Case, Suite, SuiteError, load_suite
from pilothouse.pipeline.work import bounded
from pilothouse.storage.evals import Arm, CaseRow, EvalStore, ScoreRow, new_run_id

log = logging.getLogger(__name__)

Variants = Literal["on", "off", "both"]
ModelFactory = Callable[[str], list[Model]]
"""Model id -> the chain to use (tests pass test doubles); default: the registry."""
Progress = Callable[[int, int, CaseRow | None], None]
"""(cases done, cases in all, the case just finished or None at the start)."""


@dataclass(frozen=True)
class EvalPlan:
    """What `pilothouse eval` was asked to do; stored with the run for `--resume`."""

    folder: str
    models: tuple[str, ...] = ()
    """Model ids; empty: the copilot's own model."""
    variants: Variants = "on"
    suites: tuple[str, ...] = ()
    """Suite names or file stems; empty: every suite of the copilot."""
    cases: tuple[str, ...] = ()
    repeat: int = 1
    concurrency: int = 4
    judges: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalPlan:
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**fields)


@dataclass
class _Tally:
    done: int = 0
    total: int = 0


@dataclass
class EvalRunner:
    settings: Settings
    store: EvalStore
    model_factory: ModelFactory | None = None
    embedder: Embedder | None = None
    progress: Progress | None = None
    metrics: Sequence[Metric] = field(default_factory=all_metrics)

    # --- entry points -------------------------------------------------------------

    async def start(
        self, plan: EvalPlan, run_id: str | None = None, arms: Sequence[Arm] | None = None
    ) -> str:
        """A new run of `plan`; returns its id. `arms`: exactly these arms instead of the
        plan's models and variants (a promotion's current and candidate prompts)."""
        definition, folder = load_definition(Path(plan.folder))
        suites = select(load_suites(definition, folder), plan)
        arms = list(arms) if arms is not None else self.arms(definition, plan)
        run_id = run_id or new_run_id()
        stored = EvalPlan(**{**asdict(plan), "folder": str(folder.resolve())})
        self.store.create_run(
            run_id,
            copilot=definition.name,
            folder=str(folder.resolve()),
            plan=stored.to_dict(),
            arms=arms,
            total=_total(suites, arms, plan.repeat),
        )
        await self._run(run_id, stored, definition, folder, suites, arms)
        return run_id

    async def resume(self, run_id: str, *, concurrency: int | None = None) -> str:
        """Finish a run that was interrupted: only the cases not stored yet run."""
        run = self.store.get_run(run_id)
        plan = EvalPlan.from_dict(run.plan)
        if concurrency is not None:
            plan = EvalPlan(**{**asdict(plan), "concurrency": concurrency})
        definition, folder = load_definition(Path(plan.folder))
        suites = select(load_suites(definition, folder), plan)
        total = _total(suites, run.arms, plan.repeat)
        self.store.set_status(run.run_id, "running", total=total)
        await self._run(run.run_id, plan, definition, folder, suites, run.arms)
        return run.run_id

    def arms(self, definition: CopilotDefinition, plan: EvalPlan) -> list[Arm]:
        own = definition.model.primary or self.settings.default_model
        models = plan.models or (own,)
        settings = {"on": (True,), "off": (False,), "both": (True, False)}[plan.variants]
        arms: list[Arm] = []
        for model in models:
            for variants in settings:
                label = model if variants else f"{model} (no variants)"
                arms.append(Arm(len(arms) + 1, label, model, variants))
        return arms

    # --- the run ------------------------------------------------------------------

    async def _run(
        self,
        run_id: str,
        plan: EvalPlan,
        definition: CopilotDefinition,
        folder: Path,
        suites: Sequence[Suite],
        arms: Sequence[Arm],
    ) -> None:
        done = self.store.done(run_id)
        tally = _Tally(len(done), _total(suites, arms, plan.repeat))
        self._report(tally, None)
        judges = self._judges(plan, definition, folder)
        try:
            for arm in arms:
                todo = [
                    (suite, case, rep)
                    for suite, case, rep in _work(suites, plan.repeat)
                    if (arm.number, suite.suite, case.id, rep) not in done
                ]
                if todo:
                    await self._run_arm(run_id, plan, folder, arm, todo, judges, tally)
        finally:
            for judge in judges:
                await judge.aclose()
        self.store.set_status(run_id, "finished")

    async def _run_arm(
        self,
        run_id: str,
        plan: EvalPlan,
        folder: Path,
        arm: Arm,
        todo: list[tuple[Suite, Case, int]],
        judges: Sequence[Judge],
        tally: _Tally,
    ) -> None:
        try:
            copilot = await Copilot.open(
                folder,
                settings=self.settings,
                model=arm.model,
                models=self.model_factory(arm.model) if self.model_factory else None,
                prompt_variants=arm.variants,
                prompt=arm.prompt,
            )
        except PilothouseError as exc:
            # An unknown or unusable model: its cases are errors, the run goes on.
            log.warning("arm %s (%s) does not open: %s", arm.number, arm.label, exc)
            for suite, case, rep in todo:
                row = _error_row(arm, suite, case, rep, CaseOutcome.failed(str(exc)))
                self._record(run_id, row, tally)
            return
        try:
            services = Services(judges, self._embedder(copilot, todo))

            async def one(item: tuple[Suite, Case, int]) -> None:
                suite, case, rep = item
                outcome = await run_case(
                    copilot, case, approve=suite.approves(case), asked=suite.asks_turns(case)
                )
                row = await self._score(arm, suite, case, rep, outcome, folder, services)
                self._record(run_id, row, tally)

            await bounded(one, todo, plan.concurrency)
        finally:
            await copilot.aclose()

    def _record(self, run_id: str, row: CaseRow, tally: _Tally) -> None:
        self.store.record_case(run_id, row)
        tally.done += 1
        self._report(tally, row)

    def _report(self, tally: _Tally, row: CaseRow | None) -> None:
        if self.progress is not None:
            self.progress(tally.done, tally.total, row)

    async def _score(
        self,
        arm: Arm,
        suite: Suite,
        case: Case,
        rep: int,
        outcome: CaseOutcome,
        folder: Path,
        services: Services,
    ) -> CaseRow:
        if outcome.status == "error":
            return _error_row(arm, suite, case, rep, outcome)
        context = CaseContext(suite, case, outcome, folder, services)
        scores: list[ScoreRow] = []
        checks: list[bool] = []
        for metric in self.metrics:
            try:
                found = scores_of(await metric.score(context))
            except Exception as exc:  # a plugin may fail in any way; the case goes on
                log.warning("metric %s failed on %s: %s", metric.name, case.id, exc)
                found = []
                scores.append(ScoreRow(metric.name, None, f"the metric failed: {exc}"))
            for score in found:
                scores.append(ScoreRow(metric.name, score.value, score.detail, score.judge))
                if metric.kind == "check":
                    checks.append(score.value == 1.0)
        passed = all(checks)
        if checks:
            scores.append(ScoreRow(PASS, 1.0 if passed else 0.0))
        return CaseRow(
            arm=arm.number,
            suite=suite.suite,
            case_id=case.id,
            rep=rep,
            status="passed" if passed else "failed",
            question=case.question,
            answer=outcome.text,
            model=outcome.model,
            trace_id=outcome.trace_id,
            details=_details(outcome),
            scores=tuple(scores),
        )

    # --- services -----------------------------------------------------------------

    def _judges(self, plan: EvalPlan, definition: CopilotDefinition, folder: Path) -> list[Judge]:
        if not plan.judges:
            return []
        rubrics = load_rubrics(folder, definition.evals.rubrics)
        judges = []
        for model_id in plan.judges:
            if self.model_factory is not None:
                model = self.model_factory(model_id)[0]
            else:
                model = build_model([model_id], self.settings, board=BreakerBoard())
            judges.append(Judge(model, rubrics, label=model_id))
        return judges

    def _embedder(
        self, copilot: Copilot, todo: Sequence[tuple[Suite, Case, int]]
    ) -> Embedder | None:
        if self.embedder is not None:
            return self.embedder
        if not any(case.reference for _, case, _ in todo):
            return None
        if copilot.knowledge is not None:
            return copilot.knowledge.embedder
        from pilothouse.knowledge.local_embedder import shared_minilm

        self.embedder = shared_minilm()
        return self.embedder


# --- suites -----------------------------------------------------------------------


def load_suites(definition: CopilotDefinition, folder: Path) -> list[Suite]:
    """Every suite the copilot names; all problems of all files reported at once."""
    suites: list[Suite] = []
    problems: list[str] = []
    for relative in definition.evals.suites:
        try:
            suites.append(load_suite(folder / relative))
        except SuiteError as exc:
            problems.append(str(exc))
    if problems:
        raise SuiteError("\n".join(problems))
    if not suites:
        raise ConfigError(
            f"{folder / 'copilot.yaml'}: the copilot names no eval suites (evals: in copilot.yaml)"
        )
    names = [s.suite for s in suites]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SuiteError(f"{folder}: two suite files are both named {', '.join(twice)}")
    return suites


def select(suites: Sequence[Suite], plan: EvalPlan) -> list[Suite]:
    """The suites and cases the plan asks for; unknown names are an error."""
    chosen = list(suites)
    if plan.suites:
        known = {s.suite for s in suites}
        unknown = [n for n in plan.suites if n not in known]
        if unknown:
            raise ConfigError(
                f"no suite {', '.join(unknown)}; the copilot's suites: {', '.join(sorted(known))}"
            )
        chosen = [s for s in suites if s.suite in plan.suites]
    if plan.cases:
        wanted = set(plan.cases)
        found = {c.id for s in chosen for c in s.cases}
        unknown = sorted(wanted - found)
        if unknown:
            raise ConfigError(f"no case {', '.join(unknown)} in the suites chosen")
        chosen = [
            s.model_copy(update={"cases": [c for c in s.cases if c.id in wanted]})
            for s in chosen
            if any(c.id in wanted for c in s.cases)
        ]
    return chosen


def _work(suites: Sequence[Suite], repeat: int) -> Iterator[tuple[Suite, Case, int]]:
    for suite in suites:
        for case in suite.cases:
            for rep in range(1, repeat + 1):
                yield suite, case, rep


def _total(suites: Sequence[Suite], arms: Sequence[Arm], repeat: int) -> int:
    return len(arms) * repeat * sum(len(s.cases) for s in suites)


def _error_row(arm: Arm, suite: Suite, case: Case, rep: int, outcome: CaseOutcome) -> CaseRow:
    return CaseRow(
        arm=arm.number,
        suite=suite.suite,
        case_id=case.id,
        rep=rep,
        status="error",
        question=case.question,
        answer=outcome.text,
        trace_id=outcome.trace_id,
        error=outcome.error,
        details={"latency_s": round(outcome.latency_s, 4)},
    )


def _details(outcome: CaseOutcome) -> dict[str, Any]:
    turns = {
        "turns": [
            {"answer": turn.text, "trace_id": turn.trace_id, **_details(turn)}
            for turn in outcome.turns
        ]
    }
    if not outcome.turns:
        turns = {}
    return {
        "run_status": outcome.run_status,
        "citations": [
            {"number": c.number, "where": c.where, "inferred": c.inferred}
            for c in outcome.citations
        ],
        "retrieved": [c.where for c in outcome.retrieved],
        "tool_calls": [
            {
                "name": o.call.name,
                "arguments": o.call.arguments,
                "approved": o.approved,
                "error": o.is_error,
            }
            for o in outcome.tool_calls
        ],
        "blocked": [{"name": c.name, "arguments": c.arguments} for c in outcome.blocked],
        "decisions": [
            {"decision": d.decision, "tool": d.tool, "s": round(d.seconds, 4), "forced": d.forced}
            for d in outcome.decisions
        ],
        "latency_s": round(outcome.latency_s, 4),
        **turns,
    }
