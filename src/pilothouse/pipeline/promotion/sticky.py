"""A canary's sticky choices (docs/promotion.md, "Canary"): which model answers each
conversation, by its sticky key. A conversation seen before keeps its model; one that
started before the canary stays on the current model; a new one goes to the candidate
with the step's share, by a hash of the promotion and the key, so every server makes
the same choice. Choices are stored (first writer wins), so they survive restarts and
are shared by replicas; a store that fails costs the stickiness, never an answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging

from pilothouse.storage.promotion_records import Arm, PromotionStore

log = logging.getLogger(__name__)


def share_of(promotion_id: str, key: str) -> float:
    """Where `key` falls in [0, 1): the same for a promotion and key, everywhere."""
    digest = hashlib.sha256(f"{promotion_id}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class StickyChoices:
    def __init__(self, store: PromotionStore, promotion_id: str) -> None:
        self.store = store
        self.promotion_id = promotion_id
        self._arms: dict[str, Arm] = store.assignments(promotion_id)
        self._saved = set(self._arms)
        """The keys known to be in the store."""

    def knows(self, key: str) -> bool:
        return key in self._arms

    def choose(self, key: str, *, fresh: bool, share: float) -> tuple[Arm, bool]:
        """The arm of `key`'s conversation, and whether it was chosen now (to be kept)."""
        known = self._arms.get(key)
        if known is not None:
            return known, False
        chosen = fresh and share_of(self.promotion_id, key) < share
        return ("candidate" if chosen else "current"), True

    def note(self, key: str, arm: Arm) -> bool:
        """Keep `key` on `arm` here; whether that is new (and is to be stored)."""
        return self._arms.setdefault(key, arm) == arm and key not in self._saved

    async def keep(self, key: str, arm: Arm) -> Arm:
        """Keep `key` on `arm` here and in the store, now (first writer wins: the arm
        kept is returned). A store that fails leaves the choice here only."""
        kept = self._arms.setdefault(key, arm)
        if key not in self._saved:
            try:
                kept = await asyncio.to_thread(self.store.assign, self.promotion_id, key, kept)
            except Exception as exc:  # never the user's answer's problem
                log.warning("promotion %s: a sticky choice not stored: %s", self.promotion_id, exc)
                return kept
            self._arms[key] = kept
            self._saved.add(key)
        return kept

    async def recall(self) -> None:
        """Learn the choices other servers stored since this one opened."""
        try:
            stored = await asyncio.to_thread(self.store.assignments, self.promotion_id)
        except Exception as exc:  # never the user's answer's problem
            log.warning("promotion %s: sticky choices not read: %s", self.promotion_id, exc)
            return
        self._arms.update(stored)  # the store's choice wins
        self._saved.update(stored)
