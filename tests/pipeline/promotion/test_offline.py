"""The offline stage with scripted models: the suites on the current model and on the
candidate's prompts side by side; the gates decide; a worse candidate is rolled back
before any traffic reaches it, with its report; bad input fails before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.definition import CopilotDefinitionError
from pilothouse.errors import ConfigError
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.promotion_records import PromotionConflictError
from pilothouse.storage.promotions import SqlitePromotionStore
from tests.pipeline.promotion.conftest import started, write_copilot


async def test_a_worse_candidate_is_rolled_back_offline_with_its_report(
    promotions: Promotions, folder: Path
) -> None:
    before = (folder / "copilot.yaml").read_text()
    record = await started(promotions, folder, "test:worse")
    assert (record.stage, record.status) == ("done", "rolled_back")
    assert "offline gates failed" in (record.reason or "") and "pass" in (record.reason or "")
    assert (folder / "copilot.yaml").read_text() == before
    kinds = [e.kind for e in promotions.store.events(record.promotion_id)]
    assert kinds == ["started", "breach", "rolled_back"], kinds
    arms = record.offline["arms"]
    assert arms and not any(a["passed"] for a in arms)
    gate = arms[0]["gates"][0]
    assert gate["verdict"] == "worse" and gate["delta"] < 0 and gate["baseline"] == 1.0
    assert record.report is not None
    markdown = (Path(record.report) / "report.md").read_text()
    html = (Path(record.report) / "report.html").read_text()
    assert "rolled back" in markdown and "Offline gates" in markdown and "FAIL" in markdown
    assert "<table>" in html and "rolled back" in html
    assert promotions.store.active("evaldesk") is None


async def test_the_candidate_tries_its_family_variant_and_the_default(
    promotions: Promotions, folder: Path
) -> None:
    """test:better is of the qwen family: the qwen variant and the default instructions
    are both tried; both pass; the runtime's own choice (the variant) is kept on a tie."""
    record = await started(promotions, folder, "test:better")
    assert (record.stage, record.status) == ("shadow", "running")
    labels = [a["label"] for a in record.offline["arms"]]
    assert len(labels) == 2 and all(a["passed"] for a in record.offline["arms"])
    assert record.offline["chosen"] == "qwen variant (prompts/instructions.qwen.prompty)"
    assert (record.variants, record.prompt) == (True, None)
    run = promotions.evals.get_run(record.eval_run or "")
    assert [(a.model, a.variants, a.prompt) for a in run.arms] == [
        ("test:current", True, None),
        ("test:better", True, None),
        ("test:better", False, None),
    ]


async def test_an_explicit_variant_is_the_only_prompt_tried(
    promotions: Promotions, folder: Path
) -> None:
    (folder / "prompts/terse.prompty").write_text(
        "---\nname: terse\n---\nsystem:\nBe terse. Cite passages as [n].\n"
    )
    plan = await promotions.prepare(folder, "test:better", variant="prompts/terse.prompty")
    record = await promotions.run_offline(promotions.start(plan, started_by="test"))
    assert record.stage == "shadow"
    assert (record.variants, record.prompt) == (False, "prompts/terse.prompty")
    changes = promotions.flow.changes(record)
    assert [(c.path, c.value) for c in changes] == [
        (("model", "primary"), "test:better"),
        (("model", "variants", "qwen"), "prompts/terse.prompty"),
    ]


async def test_two_promotions_of_one_copilot_are_refused(
    promotions: Promotions, folder: Path
) -> None:
    plan = await promotions.prepare(folder, "test:better")
    first = promotions.start(plan, started_by="test")
    with pytest.raises(PromotionConflictError, match=first.promotion_id):
        promotions.start(await promotions.prepare(folder, "test:uncited"), started_by="test")
    promotions.abort("evaldesk", by="test")
    promotions.start(plan, started_by="test")  # once the first is over, a new one starts


async def test_an_invalid_policy_names_file_line_and_field(
    promotions: Promotions, tmp_path: Path
) -> None:
    policy = """\
model:
  primary: test:current
promotion:
  offline:
    gates:
      - {{metric: pas, tolerance: 0.1}}
  shadow:
    thresholds:
      - {{metric: groundedness, min: 0.8}}
  on_breach: {on_breach}
"""
    folder = write_copilot(tmp_path, policy=policy)
    with pytest.raises(CopilotDefinitionError) as caught:
        await promotions.prepare(folder, "test:better")
    lines = str(caught.value).splitlines()
    yaml_file = folder / "copilot.yaml"
    assert lines[0].startswith(f"{yaml_file}:")
    assert (
        "promotion.offline.gates.0.metric: unknown eval metric 'pas' (did you mean 'pass'?)"
        in lines[0]
    )
    assert "promotion.shadow.thresholds.0.metric: groundedness is scored by a judge" in lines[1]
    numbers = [int(line.split(":")[1]) for line in lines]
    text = yaml_file.read_text().splitlines()
    assert "pas" in text[numbers[0] - 1] and "groundedness" in text[numbers[1] - 1]
    assert promotions.store.list_promotions() == []


async def test_an_unknown_model_or_a_missing_key_fails_before_anything_starts(
    settings: Settings, tmp_path: Path
) -> None:
    promotions = Promotions(
        settings, SqlitePromotionStore.for_settings(settings), EvalStore.for_settings(settings)
    )
    folder = write_copilot(tmp_path, policy="model:\n  primary: local:qwen2.5-coder-0.5b\n")
    with pytest.raises(ConfigError, match="unknown provider 'nosuch'"):
        await promotions.prepare(folder, "nosuch:model")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        await promotions.prepare(folder, "openai:gpt-4.1-mini")
    with pytest.raises(ConfigError, match="unknown embedded model"):
        await promotions.prepare(folder, "local:qwen9-giant")
    with pytest.raises(ConfigError, match=r"answers with local:qwen2\.5-coder-0\.5b already"):
        await promotions.prepare(folder, "local:qwen2.5-coder-0.5b")
    assert promotions.store.list_promotions() == []
    assert promotions.evals.list_runs() == []
    promotions.store.close()
    promotions.evals.close()
