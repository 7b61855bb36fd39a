"""`pilothouse storage copy` and `storage migrate` as real processes: a data directory
with every kind of state (conversations, a paused run, traces, keys, a knowledge base
with its vectors and embedding cache, an eval run, a promotion with its timeline,
samples and canary assignments, a stored response) moved into a throwaway PostgreSQL server, counts
and checksums compared, and the copy read back through the PostgreSQL stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.paused_runs import PausedRunStore
from pilothouse.knowledge.embeddings import EmbeddingCache
from pilothouse.knowledge.locations import default_base_path, open_knowledge_store
from pilothouse.knowledge.retrieval import Retriever, SearchOptions
from pilothouse.knowledge.store import KnowledgeStore
from pilothouse.server.auth import hash_key
from pilothouse.server.keys import KeyStore
from pilothouse.server.openai.responses_store import ResponseStore
from pilothouse.storage.backends import close_database
from pilothouse.storage.evals import EvalStore, ScoreRow
from pilothouse.storage.promotion_records import PromotionEvent, Sample, promotion_store
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.storage.traces import TraceStore
from pilothouse.testing.conformance.eval_store import ARMS as EVAL_ARMS
from pilothouse.testing.conformance.eval_store import case as eval_case
from pilothouse.testing.conformance.eval_store import create as create_eval
from pilothouse.testing.conformance.knowledge_store import EMBEDDER, document, store_doc
from pilothouse.testing.conformance.paused_run_store import paused
from pilothouse.testing.conformance.promotion_store import record
from pilothouse.types import Message
from tests.cli.conftest import Run
from tests.server.test_responses_store import stored as stored_response
from tests.storage.aged_runs import days_ago, record_run


async def seed(home: Path) -> dict[str, str]:
    """One of everything, written by the SQLite stores."""
    facts: dict[str, str] = {}
    with ConversationStore(home / "pilothouse.db") as conversations:
        conversation = await conversations.create("helpdesk", title="VPN")
        await conversations.append(
            conversation.id, [Message.user("VPN? 🔒"), Message.assistant("WireGuard.")]
        )
        facts["conversation"] = conversation.id
    paused_runs = PausedRunStore(home / "pilothouse.db")
    await paused_runs.save(paused("run-1"))
    paused_runs.close()
    with TraceStore(home / "pilothouse.db") as traces:
        facts["run"] = record_run(traces, days_ago(1), days_ago(1) + 2)
    with KeyStore(home / "pilothouse.db") as keys:
        facts["key"], _ = keys.create("ci", ["chat:*"], rate_per_min=5)
        keys.revoke(keys.create("old", ["admin"])[1].id)
    base = default_base_path(Settings.from_sources(home=home, environ={}))
    base.parent.mkdir(parents=True)
    kb = KnowledgeStore(base)
    kb.ensure_settings({"embedding_model": EMBEDDER.model_id, "dimensions": 32}, reindex_hint="")
    store_doc(kb, document("/kb/vpn.md", "The VPN client is WireGuard.", "Port 51820."), ("it",))
    store_doc(kb, document("/kb/print.md", "Printers are on floor three."))
    vector = np.asarray(EMBEDDER.vector("cached text"), dtype=np.float32)
    EmbeddingCache(kb.conn, kb.lock).put(EMBEDDER.model_id, [("h1", vector.tobytes())])
    kb.close()
    with SqlitePromotionStore(home / "pilothouse.db") as promotions:
        promotions.create(record("pr-copied", stage="canary", step=1, policy={"on_breach": "hold"}))
        promotions.add_event("pr-copied", PromotionEvent(1.5, "canary", 1, "step", "25% 🚦"))
        for arm in ("current", "candidate"):
            promotions.add_sample("pr-copied", Sample("canary", 1, arm, {"latency_s": 0.25}))
        promotions.assign("pr-copied", "c:conv-1", "candidate")
    with EvalStore(home / "pilothouse.db") as evals:
        create_eval(evals, "ev-copied")
        evals.record_case("ev-copied", eval_case("a"))
        evals.record_case("ev-copied", eval_case("b", scores=(ScoreRow("pass", None),)))
        evals.set_status("ev-copied", "finished")
    with ResponseStore(home / "pilothouse.db") as responses:
        await responses.save(stored_response("resp_copied"), None)
    return facts


async def test_a_data_directory_moves_whole_to_postgres(
    cli: Run, home: Path, postgres_url: str, tmp_path: Path
) -> None:
    facts = await seed(home)
    result = cli("storage", "copy", "--from", f"sqlite:{home}", "--to", postgres_url, "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert report["ok"] and all(t["matches"] for t in report["tables"]), report
    assert rows["conversations/conversations"] == 1
    assert rows["conversations/conversation_messages"] == 2
    assert rows["paused_runs/paused_runs"] == 1 and rows["keys/api_keys"] == 2
    assert rows["traces/runs"] == 1 and rows["traces/spans"] == 3
    assert rows["knowledge/default/documents"] == 2 and rows["knowledge/default/chunks"] == 3
    assert rows["knowledge/default/embedding_cache"] == 1
    assert rows["promotions/promotions"] == 1 and rows["promotions/promotion_events"] == 1
    assert rows["promotions/promotion_samples"] == 2
    assert rows["promotions/promotion_assignments"] == 1
    assert rows["evals/eval_runs"] == 1 and rows["evals/eval_arms"] == 2
    assert rows["evals/eval_cases"] == 2 and rows["evals/eval_scores"] == 3
    assert rows["responses/responses"] == 1
    assert postgres_url.split("@")[0] not in result.stderr  # the URL is not echoed
    assert report["not_copied"] == []  # every table of this data directory has a store

    shared = Settings.from_sources(
        home=tmp_path / "replica", environ={DATABASE_URL_ENV: postgres_url}
    )
    try:
        conversations = ConversationStore.for_settings(shared)
        messages = await conversations.messages(facts["conversation"])
        assert [m.text for m in messages] == ["VPN? 🔒", "WireGuard."]
        assert (await PausedRunStore.for_settings(shared).take("run-1")) == paused("run-1")
        assert TraceStore.for_settings(shared).get_run(facts["run"]).run.span_count == 3
        keys = KeyStore.for_settings(shared)
        assert keys.principal_for_hash(hash_key(facts["key"])) is not None
        assert [k.name for k in keys.list()] == ["ci"]
        kb = open_knowledge_store(shared, default_base_path(shared))
        assert kb.check() == [] and kb.settings() == {
            "dimensions": 32,
            "embedding_model": EMBEDDER.model_id,
        }
        found = await Retriever(kb, EMBEDDER).search("WireGuard VPN", SearchOptions(k=1))
        assert [(r.source, r.tags) for r in found] == [("/kb/vpn.md", ("it",))]
        assert list(kb.cache.get(EMBEDDER.model_id, ["h1"])) == ["h1"]
        new_id = store_doc(kb, document("/kb/new.md", "Fresh text after the copy."))
        assert new_id > max(d.id for d in kb.documents() if d.source != "/kb/new.md")
        promotions = promotion_store(shared)
        active = promotions.active("helpdesk")
        assert active is not None and (active.stage, active.step) == ("canary", 1)
        assert active.policy == {"on_breach": "hold"}
        assert promotions.count("pr-copied", "canary", 1, "candidate") == 1
        assert promotions.assign("pr-copied", "c:conv-1", "current") == "candidate"
        promotions.add_event("pr-copied", PromotionEvent(2.5, "canary", 1, "note", "after"))
        assert [e.message for e in promotions.events("pr-copied")] == ["25% 🚦", "after"]
        evals = EvalStore.for_settings(shared)
        assert evals.get_run("ev-copied").arms == EVAL_ARMS
        assert evals.counts("ev-copied", 1) == {"passed": 2, "failed": 0, "error": 0}
        assert evals.case_scores("ev-copied", 1, "smoke", "b", 1) == [ScoreRow("pass", None)]
        responses = ResponseStore.for_settings(shared)
        assert await responses.get("resp_copied", "key_1") == stored_response("resp_copied")
    finally:
        close_database(shared)

    again = cli("storage", "copy", "--from", f"sqlite:{home}", "--to", postgres_url)
    assert again.returncode == 1
    assert "already holds rows" in again.stderr and "nothing is merged" in again.stderr


def test_copy_refuses_what_it_cannot_read(cli: Run, home: Path, tmp_path: Path) -> None:
    result = cli("storage", "copy", "--from", str(home), "--to", "postgresql://x@127.0.0.1/db")
    assert result.returncode == 2 and "sqlite:PATH" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("storage", "copy", "--from", f"sqlite:{empty}", "--to", "postgresql://x@h/db")
    assert result.returncode == 2 and "no pilothouse.db or knowledge/" in result.stderr


def test_migrate_applies_every_component_once(cli: Run, postgres_url: str) -> None:
    first = cli("storage", "migrate", "--json", env={DATABASE_URL_ENV: postgres_url})
    assert first.returncode == 0, first.stderr
    versions = json.loads(first.stdout)
    assert versions["backend"] == "postgresql"
    components = {"conversations", "paused_runs", "server_keys", "evals", "promotions"}
    assert components | {"responses"} <= set(versions["components"])
    second = cli("storage", "migrate", "--json", env={DATABASE_URL_ENV: postgres_url})
    assert json.loads(second.stdout) == versions


def test_commands_close_the_pools_they_open(
    cli: Run, postgres_url: str, opened_pools: list[Any]
) -> None:
    """A command closes the shared database's connection pool before it returns (the
    collector closed `storage migrate`'s, sometimes in the pool's own worker thread)."""
    env = {DATABASE_URL_ENV: postgres_url}
    for command in (["storage", "migrate"], ["keys", "list"], ["runs"], ["eval", "list"]):
        opened = len(opened_pools)
        result = cli(*command, env=env)
        assert result.returncode == 0, (command, result.stderr)
        assert len(opened_pools) > opened, command  # it used the database
        assert [p.name for p in opened_pools if not p.closed] == [], command


def test_migrate_on_sqlite_makes_the_data_directory(cli: Run, home: Path) -> None:
    result = cli("storage", "migrate")
    assert result.returncode == 0, result.stderr
    assert "sqlite:" in result.stdout and (home / "pilothouse.db").is_file()
