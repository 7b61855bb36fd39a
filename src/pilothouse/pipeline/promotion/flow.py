"""How a promotion moves: into the next stage when one passes, held or rolled back on a
breach, promoted at the end. Every move is a compare-and-set on the store (of two
servers deciding the same step, one moves it) and an entry of the timeline; a decision
is claimed before its timeline entry is written, so it is written once.

Promotion writes the candidate (and its prompt) into copilot.yaml as a minimal edit
(yaml_edit.py) and the report; a rollback restores copilot.yaml if a promotion had
changed it, and writes the report too. Reports go to `<data dir>/promotions/<id>/`.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.definition import DEFINITION_FILE, load_definition
from pilothouse.pipeline.promotion.offline import family_file
from pilothouse.pipeline.promotion.report import write_report
from pilothouse.pipeline.promotion.view import policy_of, promotion_view
from pilothouse.pipeline.promotion.yaml_edit import Change, apply_changes
from pilothouse.storage.promotion_records import (
    PromotionEvent,
    PromotionRecord,
    PromotionStore,
    Stage,
)

log = logging.getLogger(__name__)

REPORTS_FOLDER = "promotions"


def reports_dir(settings: Settings, promotion_id: str) -> Path:
    return settings.home / REPORTS_FOLDER / promotion_id


class PromotionFlow:
    def __init__(
        self,
        store: PromotionStore,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    # --- the timeline and moves -----------------------------------------------------------

    def event(
        self,
        record: PromotionRecord,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = PromotionEvent(self.clock(), record.stage, record.step, kind, message, data or {})
        self.store.add_event(record.promotion_id, event)
        log.info("promotion %s (%s): %s: %s", record.promotion_id, record.copilot, kind, message)

    def _move(self, record: PromotionRecord, **changes: Any) -> PromotionRecord | None:
        """Change the promotion if nobody moved it since `record` was read."""
        expect = {"stage": record.stage, "step": record.step, "status": record.status}
        if not self.store.update(record.promotion_id, expect=expect, **changes):
            return None
        return self.store.get(record.promotion_id)

    def enter(
        self, record: PromotionRecord, stage: Stage, step: int = 0, message: str = ""
    ) -> PromotionRecord | None:
        moved = self._move(
            record,
            stage=stage,
            step=step,
            status="running",
            stage_started=self.clock(),
            reason=None,
        )
        if moved is not None:
            self.event(moved, "step" if stage == "canary" and step else "stage", message)
        return moved

    def _claim(self, record: PromotionRecord) -> PromotionRecord | None:
        """Take the decision on `record`, as it was read: a compare-and-set on its
        `updated` too, so of servers that read it and decided it at once one goes on
        (and writes the timeline); None for the others."""
        now = max(self.clock(), math.nextafter(record.updated, math.inf))
        expect = {
            "stage": record.stage,
            "step": record.step,
            "status": record.status,
            "updated": record.updated,
        }
        if not self.store.update(record.promotion_id, expect=expect, updated=now):
            return None
        return replace(record, updated=now)

    def passed(self, record: PromotionRecord, reason: str) -> PromotionRecord | None:
        """The stage (or canary step) of `record` passed: on to the next."""
        claimed = self._claim(record)
        if claimed is None:
            return None
        record = claimed
        policy = policy_of(record)
        self.event(record, "passed", reason)
        if record.stage == "offline":
            return self.enter(record, "shadow", 0, f"mirroring {policy.shadow.sample:.0%}")
        if record.stage == "shadow":
            return self.enter(record, "canary", 0, f"{policy.canary.steps[0]:.0%} of conversations")
        next_step = record.step + 1
        if next_step < len(policy.canary.steps):
            share = policy.canary.steps[next_step]
            return self.enter(record, "canary", next_step, f"{share:.0%} of conversations")
        if policy.approve_promote:
            moved = self._move(record, status="awaiting_approval", reason="canary passed")
            if moved is not None:
                self.event(moved, "awaiting_approval", "waiting for a person to approve")
            return moved
        return self.promote(record, by=None)

    def breach(self, record: PromotionRecord, reason: str) -> PromotionRecord | None:
        """A gate, threshold or guard failed: hold or roll back, as the policy says."""
        claimed = self._claim(record)
        if claimed is None:
            return None
        record = claimed
        self.event(record, "breach", reason)
        if policy_of(record).on_breach == "hold":
            moved = self._move(record, status="held", reason=reason)
            if moved is not None:
                self.event(moved, "held", "no candidate traffic until a person approves or aborts")
            return moved
        return self.rollback(record, reason, by=None)

    # --- the ends -------------------------------------------------------------------------

    def promote(self, record: PromotionRecord, *, by: str | None) -> PromotionRecord | None:
        file = Path(record.folder) / DEFINITION_FILE
        before = file.read_text(encoding="utf-8")
        after = apply_changes(before, self.changes(record), where=str(file))
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(True), after.splitlines(True), "a/copilot.yaml", "b/copilot.yaml"
            )
        )
        previous = {**record.previous, "promoted_yaml": after, "diff": diff}
        # Recorded before the file changes, so a rollback after a crash here restores it.
        if not self.store.update(record.promotion_id, previous=previous):
            return None
        _write(file, after)
        who = f" by {by}" if by else ""
        moved = self._move(record, stage="done", status="promoted", reason=f"promoted{who}")
        if moved is None:  # someone aborted meanwhile: the file goes back
            _restore(file, previous)
            return None
        self.event(moved, "promoted", f"copilot.yaml: model.primary = {record.candidate}{who}")
        return self._report(moved)

    def rollback(
        self, record: PromotionRecord, reason: str, *, by: str | None
    ) -> PromotionRecord | None:
        moved = self._move(record, stage="done", status="rolled_back", reason=reason)
        if moved is None:
            return None
        file = Path(record.folder) / DEFINITION_FILE
        if _restore(file, moved.previous):
            self.event(moved, "note", "copilot.yaml restored")
        who = f" by {by}" if by else ""
        self.event(moved, "rolled_back", f"back on {record.current}{who}: {reason}")
        return self._report(moved)

    def _report(self, record: PromotionRecord) -> PromotionRecord:
        folder = reports_dir(self.settings, record.promotion_id)
        try:
            write_report(promotion_view(self.store, record, self.clock()), folder)
        except OSError as exc:
            log.error("promotion %s: the report could not be written: %s", record.promotion_id, exc)
            return record
        self.store.update(record.promotion_id, report=str(folder))
        return self.store.get(record.promotion_id)

    def changes(self, record: PromotionRecord) -> list[Change]:
        """What promotion changes in copilot.yaml: the primary model, and the candidate's
        family variant when its prompt is not the one the runtime would pick."""
        changes = [Change(("model", "primary"), record.candidate)]
        family = str(record.offline.get("family") or "")
        if not family:
            return changes
        variant = ("model", "variants", family)
        if record.prompt is not None:
            changes.append(Change(variant, record.prompt))
        elif not record.variants:
            definition, folder = load_definition(Path(record.folder))
            if family_file(definition, folder, family) is not None:
                base = definition.instructions_file
                changes.append(Change(variant, base))
        return changes


def _write(file: Path, text: str) -> None:
    """Replace `file` atomically (a reader sees the old text or the new, never half)."""
    temporary = file.with_name(f".{file.name}.promotion")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, file)


def follow_promoted(record: PromotionRecord) -> bool:
    """On a server whose copy of the copilot folder a promotion decided elsewhere did
    not edit (replicas on several machines): write the promoted copilot.yaml where the
    file still holds the text from before the promotion; True when written."""
    file = Path(record.folder) / DEFINITION_FILE
    promoted, original = record.previous.get("promoted_yaml"), record.previous.get("copilot_yaml")
    if record.status != "promoted" or not promoted or original is None or not file.is_file():
        return False
    if file.read_text(encoding="utf-8") != original:
        return False
    _write(file, promoted)
    log.info("promotion %s: copilot.yaml of %s edited as promoted", record.promotion_id, file)
    return True


def _restore(file: Path, previous: dict[str, Any]) -> bool:
    """Put copilot.yaml back when it holds what this promotion wrote."""
    promoted, original = previous.get("promoted_yaml"), previous.get("copilot_yaml")
    if not promoted or original is None or not file.is_file():
        return False
    if file.read_text(encoding="utf-8") != promoted:
        return False
    _write(file, original)
    return True
