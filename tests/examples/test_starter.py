"""The starter template that `pilothouse init NAME` copies: after the name is filled in
it is a valid copilot whose knowledge, tools and evals fit together."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pilothouse.copilot.definition import load_definition
from pilothouse.copilot.prompty import load_prompty
from pilothouse.copilot.templates import NAME_PLACEHOLDER, TEMPLATES, copy_template, valid_name
from pilothouse.copilot.templates.scaffold import _collect as collect
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.knowledge.loaders import load_file
from pilothouse.pipeline.suite import alternatives, load_suite
from pilothouse.tools.loader import load_tools

TEMPLATE = Path(__file__).resolve().parents[2] / "src/pilothouse/copilot/templates/starter"
FILES = [
    "README.md",
    "copilot.schema.json",
    "copilot.yaml",
    "evals/basic.yaml",
    "knowledge/product-faq.md",
    "knowledge/shipping-and-returns.md",
    "prompts/instructions.prompty",
    "tools/sample.py",
]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    copy_template(tmp_path / "demo", "demo")
    return tmp_path / "demo"


def test_the_template_is_not_a_valid_copilot_until_named() -> None:
    text = (TEMPLATE / "copilot.yaml").read_text(encoding="utf-8")
    assert text.count(NAME_PLACEHOLDER) == 1
    assert 'name: "{{name}}"' in text
    with pytest.raises(PilothouseError, match="name"):
        load_definition(TEMPLATE)


def test_copy_writes_every_file_with_the_name_filled_in(tmp_path: Path) -> None:
    target = tmp_path / "it-helpdesk"
    written = copy_template(target, "it-helpdesk")
    assert sorted(str(p.relative_to(target)) for p in written) == FILES
    for path in written:
        assert NAME_PLACEHOLDER not in path.read_text(encoding="utf-8"), path
    assert (target / "README.md").read_text(encoding="utf-8").startswith("# it-helpdesk\n")
    assert (target / "tools" / "sample.py").read_bytes() == (
        TEMPLATE / "tools" / "sample.py"
    ).read_bytes()


def test_the_copy_loads_as_a_copilot(demo: Path) -> None:
    definition, folder = load_definition(demo)
    assert folder == demo
    assert definition.name == "demo"
    assert definition.knowledge is not None
    assert definition.knowledge.grounding == "strict"
    assert definition.knowledge.retrieval.top_k == 3
    assert definition.limits.max_tool_steps == 3
    assert definition.evals.suites == ["evals/basic.yaml"]
    messages = load_prompty(demo / "prompts" / "instructions.prompty").render(
        {"question": "q", "context": "c"}
    )
    assert [m.role for m in messages] == ["system"]
    assert "[1]" in messages[0].text
    assert len(messages[0].text) / 4 < 100  # short for the embedded model


async def test_the_sample_tools_work_and_the_write_needs_approval(demo: Path) -> None:
    definition, folder = load_definition(demo)
    async with await load_tools(definition.tools, base_dir=folder) as toolset:
        lookup = toolset.get("order_status")
        action = toolset.get("request_return")
        assert lookup is not None and lookup.read_only and not lookup.requires_approval
        assert action is not None and action.requires_approval and not action.read_only

        found = await toolset.call("order_status", {"order_id": "so-1002"})
        assert not found.is_error
        assert found.data["status"] == "shipped"
        missing = await toolset.call("order_status", {"order_id": "SO-9"})
        assert missing.is_error and "SO-1001" in missing.content

        unapproved = await toolset.call(
            "request_return", {"order_id": "SO-1001", "reason": "Too big"}
        )
        assert unapproved.is_error and "approval" in unapproved.content
        approved = await toolset.call(
            "request_return", {"order_id": "SO-1001", "reason": "Too big"}, approved=True
        )
        assert not approved.is_error
        assert re.fullmatch(r"RMA-\d+", approved.data["return_number"])
        bad = await toolset.call("request_return", {"order_id": "SO-1001"}, approved=True)
        assert bad.is_error and "'reason' is a required property" in bad.content


@pytest.mark.parametrize("held_out", [False, True], ids=["basic", "held-out"])
async def test_the_eval_cases_fit_the_knowledge_and_the_tools(demo: Path, held_out: bool) -> None:
    """The template's suite, and the held-out one in benchmarks/grounded."""
    file = HELD_OUT if held_out else demo / "evals/basic.yaml"
    suite = load_suite(file)
    assert len(suite.cases) >= 10
    assert any(c.expect.no_answer for c in suite.cases)
    assert any(c.expect.no_tool_calls or c.expect.forbidden_tools for c in suite.cases)
    definition, folder = load_definition(demo)
    async with await load_tools(definition.tools, base_dir=folder) as toolset:
        for case in suite.cases:
            for name in case.expect.forbidden_tools:
                assert toolset.get(name) is not None, name
            for call in case.expect.tool_calls:
                tool = toolset.get(call.name)
                assert tool is not None
                assert set(call.arguments) <= set(tool.parameters["properties"])
                if tool.read_only:
                    result = await toolset.call(call.name, call.arguments)
                    assert not result.is_error, result.content
    knowledge = " ".join(load_file(p).text.lower() for p in sorted((demo / "knowledge").iterdir()))
    for case in suite.cases:
        if case.expect.no_answer:
            topic = OUT_OF_SCOPE[case.id]
            assert topic in case.question.lower() and topic not in knowledge
    for case in suite.cases:
        for source in case.expect.sources:
            document = load_file(demo / source.file)
            headings = [b.text for b in document.blocks if b.kind == "heading"]
            assert source.heading in headings
            text = " ".join(document.text.replace("*", "").lower().split())
            for keyword in case.expect.answer_includes:
                assert any(k.lower() in text for k in alternatives(keyword)), keyword


HELD_OUT = Path(__file__).resolve().parents[2] / "benchmarks/grounded/starter-heldout.yaml"

# What each out-of-scope case asks about, which the sample knowledge never mentions.
OUT_OF_SCOPE = {
    "ho-not-covered-phone": "phone number",
    "ho-not-covered-ireland": "ireland",
    "ho-not-covered-football": "football",
    "not-covered-light-bulbs": "bulb",
    "not-covered-weather": "weather",
    "not-covered-paypal": "paypal",
}


@pytest.mark.parametrize("name", ["", "Demo", "my demo", "-demo", "demo/../x", "a" * 64])
def test_names_that_cannot_be_copilot_names_are_refused(tmp_path: Path, name: str) -> None:
    assert not valid_name(name)
    with pytest.raises(ConfigError, match="cannot be a copilot name"):
        copy_template(tmp_path / "x", name)
    assert not (tmp_path / "x").exists()


def test_an_existing_folder_with_files_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        copy_template(target, "demo")
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "keep me"


def test_an_empty_folder_is_filled_and_unknown_templates_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert len(copy_template(tmp_path / "empty", "empty")) == len(FILES)
    assert TEMPLATES == ("starter",)
    with pytest.raises(ConfigError, match="no template 'fancy'"):
        copy_template(tmp_path / "other", "other", template="fancy")


def test_compiled_python_and_caches_in_a_template_are_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "template"
    (source / "tools" / "__pycache__").mkdir(parents=True)
    (source / "tools" / "__pycache__" / "sample.cpython-311.pyc").write_bytes(b"\x00")
    (source / "tools" / "sample.py").write_text("# {{name}} tools\n")
    (source / "logo.png").write_bytes(b"\x89PNG{{name}}")
    found: dict[str, bytes] = {}
    collect(source, "", "demo", found)
    assert sorted(found) == ["logo.png", "tools/sample.py"]
    assert found["tools/sample.py"] == b"# demo tools\n"
    assert found["logo.png"] == b"\x89PNG{{name}}"  # binary: as is
