"""The sections of copilot.yaml (`model`, `knowledge` with its `retrieval`, `memory`,
`limits`, `evals`, `approvals`), each a strict model: an unknown field is an error
(copilot/definition.py reports it as `file:line: field: what is wrong`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pilothouse.models.providers import PROVIDERS
from pilothouse.util.suggest import model_id_hint
from pilothouse.util.yaml_words import yaml_words

_MODEL_ID = re.compile(r"^[A-Za-z0-9_.-]+:.+$")


class Strict(BaseModel):
    """A section of copilot.yaml: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class ModelOptions(Strict):
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)


class ModelPolicy(Strict):
    primary: str | None = Field(
        default=None, description="model id; empty means the data directory's default model"
    )
    fallbacks: list[str] = Field(default_factory=list, description="tried in order on failure")
    variants: dict[str, str] = Field(
        default_factory=dict,
        description="model family (gpt, claude, gemini, qwen, llama, ...) -> .prompty file "
        "used instead of `instructions` when a model of that family answers",
    )
    options: ModelOptions = Field(default_factory=ModelOptions)
    decision_step: Annotated[Literal["auto", "on", "off"], yaml_words()] = Field(
        default="auto",
        description="decide in a constrained step of its own (answer, call a tool, ask "
        "the user, not covered) before arguments or an answer; auto: for models whose "
        "tools are emulated (profile native_tools = false)",
    )

    continue_streams: bool = Field(
        default=False,
        description="when a streamed answer breaks after text was shown, a fallback that "
        "can continue an assistant message carries it on (off: the answer ends with an error)",
    )

    @field_validator("primary")
    @classmethod
    def _primary_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL_ID.match(value):
            raise ValueError(
                f"{value!r} is not a model id like local:qwen2.5-coder-1.5b"
                + model_id_hint(value, PROVIDERS.names())
            )
        return value

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks_are_ids(cls, value: list[str]) -> list[str]:
        for model_id in value:
            if not _MODEL_ID.match(model_id):
                raise ValueError(
                    f"{model_id!r} is not a model id like openai:gpt-4.1-mini"
                    + model_id_hint(model_id, PROVIDERS.names())
                )
        return value


class RetrievalSettings(Strict):
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    top_k: int = Field(default=4, ge=1, le=50)
    min_score: float | None = Field(default=None, description="drop passages scoring below")
    fusion: Literal["weighted", "rrf"] = Field(
        default="weighted",
        description="hybrid fusion: weighted sum of cosine and saturated BM25 (measured "
        "default), or reciprocal rank fusion",
    )
    plain_bm25: bool | None = Field(
        default=None,
        description="keep every query term in BM25 (identifier-heavy corpora); default: "
        "plain in bm25 mode, very common terms pruned in hybrid",
    )
    rerank: bool = Field(
        default=False, description="let a chat model judge the relevance of the best passages"
    )
    rerank_model: str | None = Field(
        default=None, description="the judge's model id; default: the copilot's primary model"
    )
    rerank_top_n: int = Field(
        default=8, ge=1, le=50, description="how many of the best passages the judge reads"
    )
    follow_up: Annotated[Literal["context", "off"], yaml_words()] = Field(
        default="context",
        description="context: a question in a conversation is also searched together with "
        "the user's two previous questions, so a follow-up finds its topic; off: the question "
        "alone",
    )

    @model_validator(mode="after")
    def _rerank_model_needs_rerank(self) -> RetrievalSettings:
        if self.rerank_model is not None and not self.rerank:
            raise ValueError("rerank_model is set but rerank is false: set rerank: true")
        if self.rerank_model is not None and not _MODEL_ID.match(self.rerank_model):
            raise ValueError(f"{self.rerank_model!r} is not a model id like openai:gpt-4.1-mini")
        return self


class KnowledgeSettings(Strict):
    sources: list[str] = Field(
        default_factory=lambda: ["knowledge"],
        description="files, folders or globs inside the copilot folder, relative to it",
    )
    allow_outside_folder: bool = Field(
        default=False,
        description="let sources name files outside the copilot folder (absolute paths, "
        "../, links that lead out); local copilots only, refused in uploaded ones",
    )
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    grounding: Literal["strict", "prefer", "off"] = Field(
        default="prefer",
        description="strict: answer only from knowledge and say so when nothing relevant "
        "was found; prefer: use knowledge when found; off: no retrieval",
    )
    min_relevance: Annotated[float | Literal["off"] | None, yaml_words()] = Field(
        default=None,
        description="strict grounding: passages scoring below this are not relevant, and "
        "a question with none left is not covered; default: the floor calibrated for the "
        "retrieval mode (see docs/knowledge.md), off: no floor",
    )


class MemorySettings(Strict):
    window: int = Field(default=12, ge=0, description="most recent messages sent verbatim")
    summarize: bool = Field(default=True, description="summarise what falls out of the window")
    turns: Annotated[Literal["sent", "shown"], yaml_words()] = Field(
        default="sent",
        description="how earlier turns are sent to the model: sent, as the model read them "
        "(passages and steps included: a local model reuses its cached prompt); shown, as "
        "people saw them (the bare question and answer: passages are sent again when needed)",
    )


class Limits(Strict):
    max_tool_steps: int = Field(default=5, ge=0, le=50)
    max_output_tokens: int | None = Field(default=1024, ge=1)
    timeout_s: float = Field(default=300, gt=0)


class EvalGate(Strict):
    """A threshold `pilothouse eval --gate` enforces on every model evaluated."""

    metric: str = Field(description="a metric name (see docs/evals.md), e.g. pass, sources")
    min: float | None = Field(default=None, description="the metric's mean must be at least")
    max: float | None = Field(default=None, description="the metric's mean must be at most")
    no_worse_than: str | None = Field(
        default=None, description="model id: the mean must not fall below this model's"
    )
    tolerance: float = Field(default=0.0, ge=0, description="slack for no_worse_than")

    @field_validator("no_worse_than")
    @classmethod
    def _baseline_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL_ID.match(value):
            raise ValueError(f"{value!r} is not a model id like local:qwen2.5-coder-1.5b")
        return value

    @model_validator(mode="after")
    def _something_to_hold(self) -> EvalGate:
        if self.min is None and self.max is None and self.no_worse_than is None:
            raise ValueError("a gate needs min, max or no_worse_than")
        return self


class EvalSettings(Strict):
    """`evals:` in copilot.yaml: suite files, gates, judges. A plain list is the suites."""

    suites: list[str] = Field(default_factory=list, description="eval suite files")
    gates: list[EvalGate] = Field(default_factory=list)
    judges: list[str] = Field(
        default_factory=list,
        max_length=2,
        description="model ids that judge correctness and groundedness (two: agreement)",
    )
    rubrics: dict[str, str] = Field(
        default_factory=dict, description="judge metric -> .prompty rubric used instead"
    )

    @model_validator(mode="before")
    @classmethod
    def _list_is_suites(cls, value: Any) -> Any:
        return {"suites": value} if isinstance(value, list) else value


class ApprovalSettings(Strict):
    self_approve: bool = Field(
        default=False,
        description="on a server, the API key that started a run may decide its own tool "
        "calls (single-user set-ups); otherwise deciding needs the approve:<copilot> scope",
    )
