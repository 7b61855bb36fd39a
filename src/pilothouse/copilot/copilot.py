"""The Python API of a copilot.

    copilot = await Copilot.open("examples/helpdesk")        # or Copilot.load(path) in scripts
    answer = await copilot.ask("How do I reset MFA?")
    async for event in copilot.stream("Open a ticket for my broken laptop"):
        ...
    answer = await copilot.approve(run_id, approve=["call_1"])  # a paused run goes on
    await copilot.aclose()

Sync wrappers (`ask_sync`, `approve_sync`) serve scripts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.copilot_parts import (
    build_models,
    chain_ids,
    load_copilot_tools,
    open_instructions,
)
from pilothouse.copilot.definition import CopilotDefinition, load_definition
from pilothouse.copilot.events import (
    Answer,
    PendingApproval,
    RunEvent,
    RunFailed,
    RunFinished,
)
from pilothouse.copilot.memory import ConversationMemory
from pilothouse.copilot.paused_runs import PausedRunStore
from pilothouse.copilot.prompt_settings import (
    PromptSettings,
    effective_settings,
)
from pilothouse.copilot.prompting import Instructions
from pilothouse.copilot.read_ahead import read_ahead
from pilothouse.copilot.rerank import ModelRelevanceJudge
from pilothouse.copilot.run_state import Parts
from pilothouse.copilot.runtime import Runtime
from pilothouse.copilot.tool_runner import NO_CLIENT_TOOLS, ClientTools, Decision, describe_call
from pilothouse.errors import NotFoundError, PilothouseError
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.ingestion import IngestOptions, IngestReport, Progress
from pilothouse.knowledge.locations import copilot_base_path
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, process_board
from pilothouse.storage import load_settings
from pilothouse.storage.tracer import open_tracer
from pilothouse.tools.identifiers import concrete_identifiers
from pilothouse.tools.toolset import Toolset
from pilothouse.types import Usage

log = logging.getLogger(__name__)


class Copilot:
    def __init__(
        self,
        definition: CopilotDefinition,
        folder: Path,
        settings: Settings,
        *,
        models: list[Model],
        toolset: Toolset,
        knowledge: KnowledgeBase | None,
        prompt_variants: bool = True,
        prompt: str | None = None,
        judge_model: Model | None = None,
        uploaded: bool = False,
        instructions: Instructions | None = None,
        prompt_settings: PromptSettings | None = None,
    ):
        self.definition = definition
        self.folder = folder
        self.uploaded = uploaded
        """The folder came through the management API (stricter rules: its knowledge
        sources stay in it whatever copilot.yaml says)."""
        self.settings = settings
        self.models = models
        self.toolset = toolset
        self.knowledge = knowledge
        # retrieval.rerank: the judge is rerank_model, else the primary model.
        self.judge_model = judge_model
        judge = None
        retrieval = definition.knowledge.retrieval if definition.knowledge else None
        if retrieval is not None and retrieval.rerank:
            judge = ModelRelevanceJudge(judge_model or models[0])
        self.conversations = ConversationStore.for_settings(settings)
        self.paused = PausedRunStore.for_settings(settings)
        summarizer = models[0] if definition.memory.summarize else None
        self.memory = ConversationMemory(
            self.conversations,
            definition.memory,
            summarizer,
            as_sent=definition.memory.turns == "sent",
        )
        self.tracer = open_tracer(settings)
        self.instructions = instructions or Instructions(
            definition, folder, settings.environ, variants=prompt_variants, prompt=prompt
        )
        self.prompt_settings = prompt_settings or effective_settings(definition, None)
        """copilot.yaml merged with the instructions Prompty, each field with its source."""
        self.runtime = Runtime(
            Parts(
                definition=definition,
                instructions=self.instructions,
                models=models,
                toolset=toolset,
                knowledge=knowledge,
                conversations=self.conversations,
                memory=self.memory,
                paused=self.paused,
                tracer=self.tracer,
                judge=judge,
                settings=self.prompt_settings,
            )
        )
        self.last_ingest: IngestReport | None = None
        self.model_ids: tuple[str, ...] = ()
        """The model ids the chain was built from (empty when models were passed in)."""

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def knowledge_roots(self) -> tuple[str, ...]:
        """The folders knowledge may be read from (links resolved): the copilot folder,
        or anywhere (empty) for a local copilot that sets `allow_outside_folder`."""
        settings = self.definition.knowledge
        if settings is not None and settings.allow_outside_folder and not self.uploaded:
            return ()
        return (str(self.folder.resolve()),)

    # --- opening --------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        settings: Settings | None = None,
        model: str | list[str] | None = None,
        models: list[Model] | None = None,
        sync_knowledge: bool = True,
        board: BreakerBoard | None = None,
        prompt_variants: bool = True,
        prompt: str | None = None,
        progress: Progress | None = None,
        uploaded: bool = False,
    ) -> Copilot:
        """Load the copilot folder at `path`.

        `model` overrides copilot.yaml's model policy with one id or a chain of ids;
        `models` passes ready models (tests pass test doubles). With `sync_knowledge`,
        the knowledge sources are ingested incrementally (only changed files), reporting
        each file to `progress` when given. `prompt_variants=False` gives every model
        family the base instructions; `prompt` (a .prompty file relative to the folder)
        replaces the instructions for every family (a promotion's candidate prompt).
        `uploaded` marks a folder that came through the management API
        (docs/security.md: what an upload may contain)."""
        config = settings or load_settings()
        definition, folder = load_definition(Path(path), uploaded=uploaded)
        ids = () if models else chain_ids(definition, config, model)
        instructions, prompt_settings = open_instructions(
            definition, folder, config, variants=prompt_variants, prompt=prompt
        )
        chain = models or build_models(ids, config, board or process_board())
        toolset, _ = await load_copilot_tools(
            definition, folder, config, instructions, prompt_settings
        )
        for tool in toolset:
            for found in concrete_identifiers(tool.name, tool.description, tool.parameters):
                log.warning("%s: %s", definition.name, found.warning())
        knowledge = None
        judge_model = None
        try:
            if definition.knowledge is not None and definition.knowledge.grounding != "off":
                knowledge = KnowledgeBase.open_local(
                    copilot_base_path(config, folder), settings=config
                )
                retrieval = definition.knowledge.retrieval
                if retrieval.rerank and retrieval.rerank_model:
                    judge_model = build_models(
                        (retrieval.rerank_model,), config, board or BreakerBoard()
                    )[0]
            copilot = cls(
                definition,
                folder,
                config,
                models=chain,
                toolset=toolset,
                knowledge=knowledge,
                prompt_variants=prompt_variants,
                prompt=prompt,
                judge_model=judge_model,
                uploaded=uploaded,
                instructions=instructions,
                prompt_settings=prompt_settings,
            )
        except BaseException:
            await toolset.aclose()
            if knowledge is not None:
                knowledge.close()
            if judge_model is not None:
                await judge_model.aclose()
            raise
        copilot.model_ids = ids
        if sync_knowledge and knowledge is not None:
            try:
                await copilot.sync_knowledge(progress)
            except BaseException:
                await copilot.aclose()
                raise
        if knowledge is not None:
            await asyncio.to_thread(knowledge.warm)
        return copilot

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> Copilot:
        """`open` for scripts without an event loop."""
        return asyncio.run(cls.open(path, **options))

    async def sync_knowledge(self, progress: Progress | None = None) -> IngestReport | None:
        """Ingest the copilot's knowledge sources; only what changed is re-embedded."""
        if self.knowledge is None or self.definition.knowledge is None:
            return None
        report = await self.knowledge.add(
            self.definition.knowledge.sources,
            options=IngestOptions(confine_to=self.knowledge_roots),
            cwd=self.folder,
            progress=progress,
        )
        self.last_ingest = report
        return report

    # --- asking ---------------------------------------------------------------------

    def stream(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        key_id: str | None = None,
        client: ClientTools = NO_CLIENT_TOOLS,
        attributes: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """The run's events as they happen. `key_id`: the server API key asking (the
        server passes it; the run, its conversation and a pause record it). `client`:
        the caller's own tools, which the model may call too; such calls come back in
        the answer (`handed`, status awaiting_tool_output) and their results go to
        `resume`. `attributes`: more attributes of the run's span (a promotion's link)."""
        return self.runtime.run(
            question,
            conversation_id=conversation_id,
            inputs=inputs,
            key_id=key_id,
            client=client,
            attributes=attributes,
        )

    async def ask(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Answer:
        """The whole answer. A run paused for approval comes back with status
        `awaiting_approval` and its `pending` calls; see `approve`."""
        return await final_answer(
            self.stream(question, conversation_id=conversation_id, inputs=inputs)
        )

    async def read_ahead(self) -> Usage | None:
        """Read the stable start of every prompt into the primary model's cache when it
        runs in this process, so the first question does not wait for it
        (copilot/read_ahead.py); the usage of the read, None when not read."""
        return await read_ahead(self.runtime.parts)

    async def pending(self, run_id: str) -> tuple[PendingApproval, ...]:
        """The tool calls of this copilot's run `run_id` (or a prefix of one id) that
        wait for a decision; NotFoundError when no such run is paused."""
        wanted = run_id.strip().lower()
        paused = await self.paused.all(self.name)
        runs = [r for r in paused if wanted and r.run_id.startswith(wanted)]
        if len(runs) != 1:
            what = "several paused runs" if runs else "no paused run"
            raise NotFoundError(
                f"{what} of copilot {self.name!r} with id {run_id!r}"
                + ("; give more characters" if runs else "")
            )
        run = runs[0]
        return tuple(
            PendingApproval(run.run_id, call, describe_call(self.toolset, call))
            for call in run.pending
        )

    def resume(
        self,
        run_id: str,
        decisions: Mapping[str, Decision],
        *,
        decided_by: str | None = None,
        client: ClientTools = NO_CLIENT_TOOLS,
        attributes: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Resume the paused run with exactly this id; `decided_by`: the deciding key;
        `client`: the caller's tools and the results it brings; `attributes`: more
        attributes of the continuation's run span."""
        return self.runtime.resume(
            run_id, decisions, decided_by=decided_by, client=client, attributes=attributes
        )

    async def approve(
        self,
        run_id: str,
        *,
        approve: Iterable[str] = (),
        deny: Iterable[str] = (),
        note: str = "",
        decided_by: str | None = None,
    ) -> Answer:
        """Decide a paused run's tool calls by id (undecided ones are denied) and let it
        go on. The run id must be whole: a prefix never matches."""
        decisions = {call_id: Decision(True) for call_id in approve}
        decisions.update({call_id: Decision(False, note) for call_id in deny})
        return await final_answer(self.resume(run_id, decisions, decided_by=decided_by))

    def ask_sync(self, question: str, **options: Any) -> Answer:
        return asyncio.run(self.ask(question, **options))

    def approve_sync(self, run_id: str, **options: Any) -> Answer:
        return asyncio.run(self.approve(run_id, **options))

    async def aclose(self) -> None:
        await self.runtime.aclose()
        await self.toolset.aclose()
        for model in self.models:
            await model.aclose()
        if self.judge_model is not None:
            await self.judge_model.aclose()
        if self.knowledge is not None:
            self.knowledge.close()
        self.conversations.close()
        self.paused.close()
        self.tracer.close()


async def final_answer(events: AsyncIterator[RunEvent]) -> Answer:
    """Drain a run's events into its answer (to the end, so the run's trace closes)."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, RunFinished | RunFailed):
            answer = event.answer
    if answer is None:
        raise PilothouseError("the run ended without an answer")
    return answer
