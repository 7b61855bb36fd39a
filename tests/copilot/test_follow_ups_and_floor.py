"""Follow-ups retrieve with their previous turn; under strict grounding, passages below
the relevance floor are not relevant, and a question with none left is not covered."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.definition_sections import KnowledgeSettings, RetrievalSettings
from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import retrieve
from pilothouse.copilot.relevance import floor_for
from pilothouse.copilot.shown_answer import NOT_COVERED
from pilothouse.knowledge.documents import SearchResult
from pilothouse.models import FunctionModel
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import Tracer
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest
from tests.copilot.conftest import ask_in_turn

DEFINITION = """\
name: office
instructions: You are the office assistant. Cite passages as [n].
knowledge:
  sources: [knowledge]
  retrieval: {{mode: hybrid, top_k: 2{retrieval}}}
  grounding: strict
  {knowledge}
memory: {{window: 6, summarize: false{memory}}}
"""


PASSWORD = "How do I reset my forgotten password?"
FOLLOW_UP = "And how long until it works?"


@pytest.fixture
def office(tmp_path: Path) -> Path:
    folder = tmp_path / "office"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge/passwords.md").write_text(
        "# Passwords\n\n## Resetting a forgotten password\n\nReset a forgotten password at "
        "reset.example.com with your authenticator app. The new password works everywhere "
        "within five minutes.\n"
    )
    (folder / "knowledge/printing.md").write_text(
        "# Printing\n\n## Colour\n\nColour pages cost 8p each and are charged to your department.\n"
    )
    (folder / "knowledge/parking.md").write_text(
        "# Car park\n\n## Spaces\n\nThe car park has 40 spaces, allocated by seniority.\n"
    )
    write(folder)
    return folder


def write(folder: Path, retrieval: str = "", knowledge: str = "", memory: str = "") -> None:
    (folder / "copilot.yaml").write_text(
        DEFINITION.format(retrieval=retrieval, knowledge=knowledge, memory=memory)
    )


def prompt(request: ModelRequest) -> str:
    return request.messages[-1].text


async def test_a_follow_up_finds_the_passage_of_its_topic(office: Path, settings: Settings) -> None:
    model = FunctionModel(lambda r: "It works within five minutes [1].", model_id="t:f")
    _, second = await ask_in_turn(office, settings, model, PASSWORD, FOLLOW_UP)
    # The passage is in the request once: above, in the first turn as it was sent.
    texts = [m.text for m in model.requests[-1].messages]
    assert sum("The new password works everywhere" in text for text in texts) == 1
    given = "[1] (knowledge/passwords.md, Passwords > Resetting a forgotten password), given above."
    assert given in prompt(model.requests[-1])
    assert second.citations[0].source.endswith("passwords.md")
    store = TraceStore(settings.database_path)
    [retrieval] = [s for s in store.get_run(second.run_id).spans if s.kind == "retrieval"]
    store.close()
    assert retrieval.attributes[A.RETRIEVAL_QUERY] == FOLLOW_UP
    assert retrieval.attributes[A.RETRIEVAL_CONTEXT_QUERY] == f"{PASSWORD}\n{FOLLOW_UP}"


async def test_turns_shown_send_the_history_as_people_saw_it_and_passages_again(
    office: Path, settings: Settings
) -> None:
    write(office, memory=", turns: shown")
    model = FunctionModel(lambda r: "It works within five minutes [1].", model_id="t:f")
    await ask_in_turn(office, settings, model, PASSWORD, FOLLOW_UP)
    messages = model.requests[-1].messages
    assert [m.text for m in messages[1:3]] == [PASSWORD, "It works within five minutes [1]."]
    # The passage the first turn was given is not in the history: it is sent again.
    assert "The new password works everywhere" in prompt(model.requests[-1])
    assert "given above" not in prompt(model.requests[-1])


async def test_without_follow_up_context_the_question_is_searched_alone(
    office: Path, settings: Settings
) -> None:
    write(office, retrieval=", follow_up: off")
    model = FunctionModel(lambda r: "Five minutes [1].", model_id="t:f")
    _, second = await ask_in_turn(office, settings, model, PASSWORD, FOLLOW_UP)
    assert second.text == NOT_COVERED  # alone, the follow-up is about nothing


async def test_an_off_topic_question_is_not_covered_by_default(
    office: Path, settings: Settings
) -> None:
    model = FunctionModel(lambda r: "Colour pages cost 8p [1].", model_id="t:f")
    off_topic, on_topic = await ask_in_turn(
        office, settings, model, "Who won the football world cup in 1966?", "How much is colour?"
    )
    assert off_topic.text == NOT_COVERED and off_topic.citations == ()
    assert len(model.requests) == 1  # only the question the knowledge covers reached it
    assert on_topic.citations[0].source.endswith("printing.md")
    store = TraceStore(settings.database_path)
    [retrieval] = [s for s in store.get_run(off_topic.run_id).spans if s.kind == "retrieval"]
    store.close()
    floor = retrieval.attributes[A.RETRIEVAL_MIN_RELEVANCE]
    assert floor == floor_for(KnowledgeSettings())
    assert retrieval.attributes[A.RETRIEVAL_BEST_SCORE] < floor


async def test_the_floor_can_be_set_or_switched_off(office: Path, settings: Settings) -> None:
    write(office, knowledge="min_relevance: off")
    model = FunctionModel(lambda r: "I do not know.", model_id="t:f")
    copilot = await Copilot.open(office, settings=settings, models=[model])
    try:
        await copilot.ask("Who won the football world cup in 1966?")
    finally:
        await copilot.aclose()
    assert "Passages from the knowledge base" in prompt(model.requests[0])
    assert floor_for(KnowledgeSettings(min_relevance=0.5)) == 0.5
    assert floor_for(KnowledgeSettings(min_relevance="off")) is None
    bm25 = KnowledgeSettings.model_validate({"retrieval": {"mode": "bm25"}})
    assert floor_for(bm25) is None  # BM25 scores are unbounded: no default


async def test_and_what_about_floor_3_retrieves_the_floor_3_printer_with_its_query_traced(
    office: Path, settings: Settings
) -> None:
    (office / "knowledge/printing.md").write_text(
        "# Printing\n\n## Floor 1 printer\n\nThe floor 1 printer stands opposite the lifts.\n\n"
        "## Floor 3 printer\n\nThe floor 3 printer stands in the kitchen area.\n"
    )
    (office / "knowledge/canteen.md").write_text(
        "# Canteen\n\n## Floor 3\n\nWhat about floor 3? The canteen on floor 3 serves lunch "
        "from noon.\n"
    )
    model = FunctionModel(lambda r: "In the kitchen area [1].", model_id="t:f")
    question = "And what about floor 3?"
    first, second = await ask_in_turn(
        office, settings, model, "Where is the printer on floor 1?", question
    )
    assert first.citations[0].headings[-1] == "Floor 1 printer"
    store = TraceStore(settings.database_path)
    [retrieval] = [s for s in store.get_run(second.run_id).spans if s.kind == "retrieval"]
    store.close()
    hits = retrieval.attributes[A.RETRIEVAL_HITS]
    assert hits[0]["heading"] == "Printing > Floor 3 printer", hits
    assert retrieval.attributes[A.RETRIEVAL_QUERY] == question
    assert (
        retrieval.attributes[A.RETRIEVAL_CONTEXT_QUERY]
        == f"Where is the printer on floor 1?\n{question}"
    )


async def test_a_third_turn_retrieves_with_the_two_questions_before_it(
    office: Path, settings: Settings
) -> None:
    # "And how long until it works?" after "Anything I should know first?" is about
    # nothing: the topic is two turns back (issue 20: "Will the T2 fit my heating
    # system?" ... "And what should I switch off before I start?" was not covered).
    model = FunctionModel(lambda r: "It works within five minutes [1].", model_id="t:f")
    middle = "Is there anything I should know first?"
    *_, third = await ask_in_turn(office, settings, model, PASSWORD, middle, FOLLOW_UP)
    assert third.text != NOT_COVERED
    assert third.citations[0].source.endswith("passwords.md")
    store = TraceStore(settings.database_path)
    [retrieval] = [s for s in store.get_run(third.run_id).spans if s.kind == "retrieval"]
    store.close()
    assert retrieval.attributes[A.RETRIEVAL_CONTEXT_QUERY] == f"{PASSWORD}\n{middle}\n{FOLLOW_UP}"


def hit(chunk: int, source: str, score: float, text: str = "") -> SearchResult:
    text = text or f"{source} text"
    return SearchResult(chunk, chunk, source, source, "md", text, 0, 9, None, (), score)


class WordEmbedder:
    """Vectors that count a few words (by their start), and a constant: texts sharing
    those words are near."""

    WORDS = ("device", "vpn", "office", "home", "remote")
    model_id = "words"
    dimensions = len(WORDS) + 1

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [
            [0.1] + [float(sum(w.startswith(k) for w in t.lower().split())) for k in self.WORDS]
            for t in texts
        ]


class Scripted:
    """A knowledge base that answers each query with its scripted hits."""

    def __init__(self, hits: dict[str, list[SearchResult]]) -> None:
        self.hits = hits
        self.recent = WordEmbedder()

    async def search(self, query: str, options: object, **_: object) -> list[SearchResult]:
        return self.hits[query]


async def test_a_new_topic_keeps_the_best_passage_of_its_own_question(tmp_path: Path) -> None:
    # issue 20, followups-fresh5: "Changing the subject, I found a USB stick in the car
    # park. What should I do with it?" after "How do I add the print queue on Windows?":
    # with the question before it, three printing passages scored higher (0.58, 0.47,
    # 0.46) than the security policy's section 5 with the follow-up alone (0.34), so the
    # passage that answers it was not among the turn's.
    question, joined = "Found a USB stick?", "How do I add the print queue?\nFound a USB stick?"
    knowledge = Scripted(
        {
            question: [hit(54, "security.pdf", 0.34), hit(14, "catalogue.docx", 0.26)],
            joined: [hit(45, "printing.md", 0.58), hit(48, "printing.md", 0.47)],
        }
    )
    found = await given(knowledge, question, joined, tmp_path, top_k=2)
    assert [(c.source, c.score) for c in found] == [("printing.md", 0.58), ("security.pdf", 0.34)]
    # one passage asked for: the follow-up's context decides, as before
    one = await given(knowledge, question, joined, tmp_path, top_k=1, floor=None)
    assert [c.source for c in one] == ["printing.md"]


async def test_a_follow_up_gets_the_passage_whose_sentence_answers_it(tmp_path: Path) -> None:
    # issue 20, followups-fresh6: "Can I have it connected on my laptop and my desktop at
    # the same time?" after two VPN questions: the session-limits passage that answers it
    # ranked 4th by the fused score, behind VPN passages that say more about the VPN as
    # a whole; its one sentence about devices is nearer the question than any of theirs.
    question = "Can I use it on two devices?"
    joined = f"Do I need the VPN at home?\n{question}"
    limits = "Sessions end after 12 hours. You can be connected on one device at a time."
    knowledge = Scripted(
        {
            question: [hit(1, "vpn.md", 0.31, "The VPN connects you to the office network.")],
            joined: [
                hit(1, "vpn.md", 0.57, "The VPN connects you to the office network."),
                hit(2, "remote.md", 0.54, "Remote desktop to an office PC needs the VPN."),
                hit(3, "home.md", 0.50, "At home the VPN needs a stable connection."),
                hit(4, "limits.md", 0.45, limits),
            ],
        }
    )
    found = [c.source for c in await given(knowledge, question, joined, tmp_path)]
    assert found[0] == "limits.md"
    assert len(found) == 3  # as many passages as before: the prompt does not grow


async def test_a_follow_up_naming_an_identifier_keeps_its_passage_below_the_floor(
    tmp_path: Path,
) -> None:
    # issue 20, followups-fresh5/6: "What about a P4?" after a P1 question: the priority
    # table that names P4 scored 0.27 against the 0.3 floor (short identifier questions
    # score low by embedding whatever the passages say).
    question, joined = "What about a P4?", "How soon is a P1 picked up?\nWhat about a P4?"
    targets = hit(2, "targets.html", 0.27, "P4 Low: response target 1 business day.")
    knowledge = Scripted(
        {
            question: [hit(3, "onboarding.pdf", 0.25, "Bring photo ID on your first day.")],
            joined: [hit(1, "priorities.html", 0.32, "Priorities go from P1 to P4."), targets],
        }
    )
    found = await given(knowledge, question, joined, tmp_path)
    # not the onboarding passage
    assert sorted(c.source for c in found) == ["priorities.html", "targets.html"]
    # A conversation's first question keeps the floor as calibrated.
    knowledge.hits[question] = [targets]
    assert await given(knowledge, question, None, tmp_path) == []


async def given(
    knowledge: Scripted,
    question: str,
    context_query: str | None,
    base: Path,
    top_k: int = 3,
    floor: float | None = 0.3,
) -> list[Citation]:
    """The passages a question gets from `knowledge`."""
    found = await retrieve(
        knowledge,  # type: ignore[arg-type]
        RetrievalSettings(top_k=top_k),
        question,
        base=base,
        tracer=Tracer(),
        source_id="t",
        context_query=context_query,
        floor=floor,
    )
    return found.citations
