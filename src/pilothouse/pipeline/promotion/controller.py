"""Starting, deciding and ending promotions: what `pilothouse promote`, `pilothouse
promotion approve|abort` and the management API call (docs/promotion.md).

`prepare` checks everything a promotion needs before anything starts (the policy,
the models and their keys, the suites, the prompt variant); `start` records it (one per
copilot at a time); `run_offline` runs the offline stage and moves the promotion on
(to shadow) or holds or rolls it back. Shadow and canary run where traffic is: a
server serving the copilot (live.py) picks the promotion up from the store.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.definition import (
    DEFINITION_FILE,
    CopilotDefinition,
    CopilotDefinitionError,
    load_definition,
)
from pilothouse.copilot.promotion_policy import PromotionPolicy
from pilothouse.copilot.prompty import load_prompty
from pilothouse.errors import ConfigError, NotFoundError, PilothouseError
from pilothouse.knowledge.embeddings import Embedder
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import build_model
from pilothouse.models.readiness import readiness
from pilothouse.models.registry import create_model
from pilothouse.pipeline.judge import DEFAULT_JUDGE, Judge
from pilothouse.pipeline.metrics import METRICS
from pilothouse.pipeline.promotion.flow import PromotionFlow
from pilothouse.pipeline.promotion.offline import (
    PromptOption,
    arms_for,
    check_gates,
    prompt_options,
    unknown_gate_metrics,
)
from pilothouse.pipeline.promotion.online import online_judge
from pilothouse.pipeline.runner import EvalPlan, EvalRunner, Progress, load_suites, select
from pilothouse.storage.evals import EvalStore, new_run_id
from pilothouse.storage.promotion_records import PromotionRecord, PromotionStore
from pilothouse.util.suggest import did_you_mean

log = logging.getLogger(__name__)

ModelFactory = Callable[[str], list[Model]]
"""Model id -> the chain to use (tests pass test doubles); default: the registry."""
JUDGED = frozenset({"groundedness", "agreement"})


def new_promotion_id() -> str:
    return "pr-" + secrets.token_hex(6)


@dataclass(frozen=True)
class PromotionPlan:
    """A checked request to promote: everything `start` needs."""

    definition: CopilotDefinition
    folder: Path
    current: str
    candidate: str
    family: str
    options: tuple[PromptOption, ...]
    variant: str | None
    text: str
    """copilot.yaml as it is now (what a rollback restores)."""

    @property
    def policy(self) -> PromotionPolicy:
        return self.definition.promotion


def judge_of(definition: CopilotDefinition) -> str | None:
    """The online judge: `promotion.judge`, else the first of `evals.judges`."""
    chosen = definition.promotion.judge
    if chosen == "none":
        return None
    chosen = chosen or next(iter(definition.evals.judges), None)
    return DEFAULT_JUDGE if chosen == "default" else chosen


@dataclass
class Promotions:
    settings: Settings
    store: PromotionStore
    evals: EvalStore
    model_factory: ModelFactory | None = None
    embedder: Embedder | None = None
    clock: Callable[[], float] = time.time

    @property
    def flow(self) -> PromotionFlow:
        return PromotionFlow(self.store, self.settings, clock=self.clock)

    # --- starting ---------------------------------------------------------------------

    async def prepare(
        self, path: Path, candidate: str, *, variant: str | None = None
    ) -> PromotionPlan:
        """Check a promotion of the copilot at `path` to `candidate` before anything
        starts: every problem raises (file:line:field for the policy)."""
        definition, folder = load_definition(path)
        current = definition.model.primary or self.settings.default_model
        if ":" not in candidate:
            raise ConfigError(f"--to {candidate!r} is not a model id like local:qwen2.5-coder-1.5b")
        if candidate == current and variant is None:
            raise ConfigError(
                f"copilot {definition.name!r} answers with {candidate} already; promote to "
                "another model, or give --variant FILE to promote a prompt"
            )
        self._check_policy(definition)
        checks = [(candidate, "--to"), (current, "the current model (model.primary)")]
        judge = judge_of(definition)
        if judge is not None:
            checks.append((judge, "the online judge (promotion.judge)"))
        for model_id, what in checks:
            self._check_model(model_id, what)
        offline = definition.promotion.offline
        select(
            load_suites(definition, folder),
            EvalPlan(folder=str(folder), suites=tuple(offline.suites), cases=tuple(offline.cases)),
        )
        if variant is not None:
            variant = _check_variant(folder, variant)
        family = await self._family(candidate)
        options = prompt_options(definition, folder, family, offline.variants, variant)
        if not options:
            raise ConfigError(f"no prompt of {folder} loads for {candidate}: see the warnings")
        text = (folder / DEFINITION_FILE).read_text(encoding="utf-8")
        return PromotionPlan(
            definition, folder, current, candidate, family, tuple(options), variant, text
        )

    def start(self, plan: PromotionPlan, *, started_by: str | None) -> PromotionRecord:
        """Record the promotion in its offline stage; PromotionConflictError when the
        copilot has one under way."""
        now = self.clock()
        record = PromotionRecord(
            promotion_id=new_promotion_id(),
            copilot=plan.definition.name,
            folder=str(plan.folder.resolve()),
            current=plan.current,
            candidate=plan.candidate,
            stage="offline",
            status="running",
            created=now,
            updated=now,
            stage_started=now,
            policy=plan.policy.model_dump(mode="json"),
            offline={
                "family": plan.family,
                "variant": plan.variant,
                "options": [asdict(o) for o in plan.options],
            },
            previous={"copilot_yaml": plan.text},
            started_by=started_by,
        )
        self.store.create(record)
        who = f" by {started_by}" if started_by else ""
        self.flow.event(record, "started", f"{plan.current} -> {plan.candidate}{who}")
        return record

    def _check_policy(self, definition: CopilotDefinition) -> None:
        policy = definition.promotion
        problems = []
        for index, name in unknown_gate_metrics(policy.offline.gates):
            where = definition.locate("promotion", "offline", "gates", index, "metric")
            hint = did_you_mean(name, ["pass", *METRICS.names()])
            problems.append(f"{where}: unknown eval metric {name!r}{hint}; see docs/evals.md")
        if judge_of(definition) is None:
            rules: list[tuple[str, int, str]] = [
                ("shadow", i, r.metric) for i, r in enumerate(policy.shadow.thresholds)
            ] + [("canary", i, r.metric) for i, r in enumerate(policy.canary.guards)]
            for stage, index, metric in rules:
                if metric in JUDGED:
                    field = "thresholds" if stage == "shadow" else "guards"
                    where = definition.locate("promotion", stage, field, index, "metric")
                    problems.append(
                        f"{where}: {metric} is scored by a judge, and none is set: set "
                        "promotion.judge to a model id (or evals.judges)"
                    )
        if problems:
            raise CopilotDefinitionError("\n".join(problems))

    def _check_model(self, model_id: str, what: str) -> None:
        if self.model_factory is not None:
            try:
                self.model_factory(model_id)
            except PilothouseError as exc:
                raise ConfigError(f"{what} {model_id} cannot be used: {exc}") from None
            return
        try:
            ready = readiness(model_id, self.settings)
        except PilothouseError as exc:
            raise ConfigError(f"{what} {model_id} cannot be used: {exc}") from None
        if not ready.ready:
            raise ConfigError(f"{what} {model_id} cannot answer here: {ready.detail}")

    async def _family(self, model_id: str) -> str:
        models = self.model(model_id)
        try:
            return models[0].profile.family
        finally:
            if self.model_factory is None:
                for model in models:
                    await model.aclose()

    def model(self, model_id: str) -> list[Model]:
        if self.model_factory is not None:
            return self.model_factory(model_id)
        return [create_model(model_id, self.settings)]

    def online_judge(self, copilot: Copilot) -> Judge | None:
        """The judge of a copilot's online scores (None when it has none)."""
        judge_id = judge_of(copilot.definition)
        if judge_id is None:
            return None
        if self.model_factory is not None:
            model = self.model_factory(judge_id)[0]
        else:
            model = build_model([judge_id], self.settings, board=BreakerBoard())
        rubrics = dict(copilot.definition.evals.rubrics)
        return online_judge(model, copilot.folder, rubrics, judge_id)

    # --- the offline stage ---------------------------------------------------------------

    async def run_offline(
        self, record: PromotionRecord, progress: Progress | None = None
    ) -> PromotionRecord:
        """The copilot's suites on the current model and the candidate's prompts (an
        interrupted run resumes); the gates decide. Returns the promotion as it is after."""
        policy = PromotionPolicy.model_validate(record.policy)
        definition, _ = load_definition(Path(record.folder))
        options = [PromptOption(**o) for o in record.offline.get("options", [])]
        judges = [DEFAULT_JUDGE if j == "default" else j for j in definition.evals.judges]
        plan = EvalPlan(
            folder=record.folder,
            models=(record.current, record.candidate),
            suites=tuple(policy.offline.suites),
            cases=tuple(policy.offline.cases),
            concurrency=policy.offline.concurrency,
            judges=tuple(judges),
        )
        runner = EvalRunner(
            self.settings,
            self.evals,
            model_factory=self.model_factory,
            embedder=self.embedder,
            progress=progress,
        )
        if record.eval_run is not None and self._run_exists(record.eval_run):
            run_id = await runner.resume(record.eval_run)
        else:
            run_id = new_run_id()
            self.store.update(record.promotion_id, eval_run=run_id)
            arms = arms_for(record.current, record.candidate, options)
            await runner.start(plan, run_id=run_id, arms=arms)
        results = check_gates(self.evals, run_id, policy.offline.gates)
        best = results[0]
        chosen = options[best["arm"] - 2].label
        offline = {**record.offline, "arms": results, "chosen": chosen}
        self.store.update(
            record.promotion_id,
            offline=offline,
            prompt=best["prompt"],
            variants=best["variants"],
            eval_run=run_id,
        )
        record = self.store.get(record.promotion_id)
        if record.stage != "offline" or record.status != "running":
            return record  # aborted meanwhile
        if best["passed"]:
            moved = self.flow.passed(record, f"every gate holds with {chosen}")
        else:
            failed = [g for g in best["gates"] if not g["passed"]]
            reason = "; ".join(f"{g['name']}: {g['detail']}" for g in failed)
            moved = self.flow.breach(record, f"offline gates failed ({chosen}): {reason}")
        return moved or self.store.get(record.promotion_id)

    def _run_exists(self, run_id: str) -> bool:
        try:
            self.evals.get_run(run_id)
        except NotFoundError:
            return False
        return True

    # --- a person's decisions --------------------------------------------------------------

    def find(self, copilot: str) -> PromotionRecord:
        """The copilot's promotion under way, else its latest; or a promotion by id."""
        if copilot.startswith("pr-"):
            return self.store.get(copilot)
        found = self.store.active(copilot) or next(
            iter(self.store.list_promotions(copilot=copilot, limit=1)), None
        )
        if found is None:
            raise NotFoundError(
                f"copilot {copilot!r} has no promotion; start one with `pilothouse promote`"
            )
        return found

    def approve(self, copilot: str, *, by: str) -> PromotionRecord:
        """Let a held promotion go on (into the next stage, as if the one that held had
        passed), or promote one waiting for approval."""
        record = self._active(copilot)
        if record.status == "awaiting_approval":
            return self.flow.promote(record, by=by) or self.store.get(record.promotion_id)
        if record.status != "held":
            raise ConfigError(
                f"promotion {record.promotion_id} is {record.status} ({record.stage}): there is "
                "nothing to approve (a held promotion, or one waiting to promote)"
            )
        self.flow.event(record, "approved", f"{by} lets it go on despite: {record.reason}")
        if not self.store.update(
            record.promotion_id, expect={"status": "held"}, status="running", reason=None
        ):
            return self.store.get(record.promotion_id)
        running = self.store.get(record.promotion_id)
        return self.flow.passed(running, f"approved by {by}") or self.store.get(record.promotion_id)

    def abort(self, copilot: str, *, by: str, reason: str = "") -> PromotionRecord:
        """Roll the promotion back now, wherever it is."""
        record = self._active(copilot)
        why = f"aborted by {by}" + (f": {reason}" if reason else "")
        return self.flow.rollback(record, why, by=by) or self.store.get(record.promotion_id)

    def _active(self, copilot: str) -> PromotionRecord:
        record = self.find(copilot)
        if not record.active:
            raise NotFoundError(
                f"promotion {record.promotion_id} of {record.copilot} is over ({record.status})"
            )
        return record

    def status(self, copilot: str) -> dict[str, Any]:
        from pilothouse.pipeline.promotion.view import promotion_view

        return promotion_view(self.store, self.find(copilot), self.clock())


def _check_variant(folder: Path, variant: str) -> str:
    """The variant file relative to the copilot folder (given relative to the folder,
    or as a path from here); it must be inside the folder and load."""
    root = folder.resolve()
    try:
        given = Path(variant)
        path = (root / given).resolve() if (root / given).is_file() else given.resolve()
    except (OSError, ValueError) as exc:  # a name no file can have
        raise ConfigError(f"--variant {variant!r}: {exc}") from None
    if not path.is_relative_to(root):
        raise ConfigError(f"--variant {variant}: the prompt must be inside the copilot folder")
    if not path.is_file():
        raise ConfigError(f"--variant {variant}: no such file (in {folder} or from here)")
    try:
        load_prompty(path)
    except PilothouseError as exc:
        raise ConfigError(f"--variant {variant}: {exc}") from None
    return str(path.relative_to(root))
