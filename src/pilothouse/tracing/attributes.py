"""The attribute vocabulary of Pilothouse spans: one constant per key, so the runtime
that records, the store that sums, the CLI that shows and the OpenTelemetry exporter
that maps all agree.

Where the OpenTelemetry GenAI semantic conventions name a concept, the key is theirs
(`gen_ai.*`); Pilothouse-only facts are under `pilothouse.*`. Two deliberate
differences from the conventions, both undone by the exporter (tracing/otel.py):

- model ids are Pilothouse ids, `provider:model` (`openai:gpt-4.1-mini`), in
  `gen_ai.request.model` and `gen_ai.response.model`; the exporter splits them into
  `gen_ai.provider.name` and the bare model name;
- messages are stored in Pilothouse's plain-data form (`pilothouse.types.message_to_dict`:
  `{"role", "parts": [{"kind": "text", "text"}, {"kind": "tool_call", ...}]}`) under
  `pilothouse.request.messages` / `pilothouse.response.message`; the exporter converts
  them to the conventions' `gen_ai.input.messages` / `gen_ai.output.messages` shape.

Content keys (`CONTENT_KEYS`) hold what people wrote or read: always stored locally
(redacted for secrets), exported to OpenTelemetry only when content capture is opted in.

What each span kind records (see docs/tracing.md for the full table):

run        AGENT_NAME, CONVERSATION_ID, RUN_QUESTION, RUN_ANSWER, RUN_STEPS, RUN_CITATIONS,
           RUN_STATUS, RUN_RESUMES, RUN_KEY_ID, PROMOTION_ID, PROMOTION_ROLE, PROMOTION_PAIR
retrieval  DATA_SOURCE_ID, RETRIEVAL_QUERY, REQUEST_TOP_K, RETRIEVAL_HITS
model      REQUEST_MODEL, RESPONSE_MODEL, REQUEST_TEMPERATURE, REQUEST_MAX_TOKENS,
           REQUEST_TOP_P, USAGE_INPUT_TOKENS, USAGE_OUTPUT_TOKENS, USAGE_CACHED_TOKENS,
           COST_USD, FINISH_REASONS, REQUEST_MESSAGES, RESPONSE_MESSAGE, REQUEST_TOOLS,
           PROMPT_VARIANT, MODEL_STREAM, MODEL_STATUS
tool       TOOL_NAME, TOOL_CALL_ID, TOOL_ARGUMENTS, TOOL_RESULT, TOOL_IS_ERROR,
           TOOL_REQUIRES_APPROVAL
approval   TOOL_NAME, TOOL_CALL_ID, APPROVAL_DECISION, APPROVAL_KEY_ID
memory     MEMORY_MESSAGES_KEPT, MEMORY_SUMMARISED
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

# --- run (kind="run"; one per copilot answer; its trace id is the run id) -----------
AGENT_NAME: Final = "gen_ai.agent.name"
"""The copilot's name (copilot.yaml `name`)."""
CONVERSATION_ID: Final = "gen_ai.conversation.id"
RUN_QUESTION: Final = "pilothouse.run.question"
"""The user's question, as text (content)."""
RUN_ANSWER: Final = "pilothouse.run.answer"
"""The final answer text (content)."""
RUN_STEPS: Final = "pilothouse.run.steps"
"""How many model calls the run took (int)."""
RUN_CITATIONS: Final = "pilothouse.run.citations"
"""The citations of the answer: list of {"chunk_id", "source", "page", "heading"}."""
RUN_RESUMES: Final = "pilothouse.run.resumes"
"""On a resumed run (after an approval decision): the id of the run that paused."""
RUN_KEY_ID: Final = "pilothouse.run.key_id"
"""The id (never the secret) of the server API key that started the run; absent for
runs started without a key (the CLI, the Python API, `--no-auth`)."""
COPILOT_PATH: Final = "pilothouse.copilot.path"
PROMOTION_ID: Final = "pilothouse.promotion.id"
"""On a run that a promotion routed or mirrored (docs/promotion.md): its id (pr-...)."""
PROMOTION_ROLE: Final = "pilothouse.promotion.role"
"""What the run was to its promotion, one of `PROMOTION_ROLES`."""
PROMOTION_PAIR: Final = "pilothouse.promotion.pair"
"""On a shadow run: the id of the user's run it mirrors (and on that run, the shadow's
is not known yet when it ends, so the link is one way)."""
PromotionRole: TypeAlias = Literal["source", "shadow", "canary", "control"]
"""source: a user's run (current model) mirrored to the candidate; shadow: the
candidate's answer to it, never shown; canary: a user's run the candidate answered;
control: a user's run the current model answered during a canary step."""
PROMOTION_ROLES: Final[tuple[str, ...]] = get_args(PromotionRole)
RUN_STATUS: Final = "pilothouse.run.status"
"""How the run ended, one of `RUN_STATUSES`. The span's own status says only ok or
error: `failed` and `cancelled` runs are error spans, the others ok."""

RunStatus: TypeAlias = Literal[
    "completed", "step_limit", "awaiting_approval", "awaiting_tool_output", "failed", "cancelled"
]
"""completed: answered; step_limit: answered after the tool step limit was reached;
awaiting_approval: paused until a person decides a tool call; awaiting_tool_output:
paused until the caller returns the results of its own tools the model called (client
tools, e.g. an Agents SDK agent's); failed: no (whole)
answer, the error says why; cancelled: the caller left (a client that disconnected,
a stream closed or a task cancelled) before the run ended."""
RUN_STATUSES: Final[tuple[str, ...]] = get_args(RunStatus)

CANCELLED: Final = "cancelled"
"""The `error_type` of a span whose work was cancelled (the consumer stopped reading,
the task was cancelled), and the status of such a run or model call."""

# --- retrieval (kind="retrieval") -------------------------------------------------
DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
"""Which knowledge was searched (the knowledge store or source name)."""
RETRIEVAL_QUERY: Final = "gen_ai.retrieval.query.text"
"""The query text sent to retrieval (content)."""
RETRIEVAL_CONTEXT_QUERY: Final = "pilothouse.retrieval.context_query"
"""A follow-up's question with the user's previous turn, searched beside it (content)."""
RETRIEVAL_MIN_RELEVANCE: Final = "pilothouse.retrieval.min_relevance"
"""Strict grounding's floor: passages scoring below it were dropped (None: no floor)."""
RETRIEVAL_BEST_SCORE: Final = "pilothouse.retrieval.best_score"
"""The best passage's score before the floor (None: nothing found)."""
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
RETRIEVAL_HITS: Final = "pilothouse.retrieval.hits"
"""What came back, best first: list of {"chunk_id", "source", "page", "heading",
"score", and optionally "text"}. Scores are whatever the retriever ranks by (fused)."""

# --- model call (kind="model"; one per call to a model, fallback chain included) ----
REQUEST_MODEL: Final = "gen_ai.request.model"
"""The model asked for, as a Pilothouse id `provider:model` (a chain's primary)."""
RESPONSE_MODEL: Final = "gen_ai.response.model"
"""The model that actually answered after any fallback, as `provider:model`."""
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHED_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
COST_USD: Final = "pilothouse.usage.cost_usd"
"""Cost of the call in US dollars when known (float); absent when unknown."""
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""list[str], e.g. ["stop"] or ["tool_calls"]."""
REQUEST_MESSAGES: Final = "pilothouse.request.messages"
"""The exact messages sent, as a list of `message_to_dict` dicts (content)."""
RESPONSE_MESSAGE: Final = "pilothouse.response.message"
"""The message that came back, as a `message_to_dict` dict (content)."""
REQUEST_TOOLS: Final = "pilothouse.request.tools"
"""Names of the tools offered to the model (list[str])."""
PROMPT_VARIANT: Final = "pilothouse.prompt.variant"
"""Which prompt variant was rendered for the answering model's family."""
MODEL_STREAM: Final = "pilothouse.model.stream"
"""True when the call streamed."""
MODEL_STATUS: Final = "pilothouse.model.status"
"""How this model call (one attempt of a fallback chain) ended, one of
`MODEL_STATUSES`: completed (its answer was used), rejected (it answered, but the
chain refused the answer, e.g. an empty one, and moved on), failed (an error, in the
span's error), cancelled (the consumer stopped before the answer ended)."""
MODEL_STATUSES: Final = ("completed", "rejected", "failed", "cancelled")
ATTEMPT: Final = "pilothouse.attempt"
"""On an attempt's span (one try of one model, models/attempts.py): which try of that
model it was, 1 for the first."""

# --- tool call (kind="tool") and approval (kind="approval") -----------------------
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""The arguments as the tool received them (dict; content; secret keys masked)."""
TOOL_RESULT: Final = "gen_ai.tool.call.result"
"""The result text handed back to the model (content)."""
TOOL_IS_ERROR: Final = "pilothouse.tool.is_error"
"""True when the result is an error the model was told about (the span is also failed)."""
TOOL_REQUIRES_APPROVAL: Final = "pilothouse.tool.requires_approval"
TOOL_BLOCKED: Final = "pilothouse.tool.blocked"
"""True on the span of a call the grounded-argument check stopped: it never ran."""
GROUNDED_MODE: Final = "pilothouse.grounded.mode"
"""The tool's grounded mode when the check found a problem: strict or warn."""
GROUNDED_PROBLEMS: Final = "pilothouse.grounded.problems"
"""Each failing argument: {parameter, value, problem} (content: values)."""
APPROVAL_DECISION: Final = "pilothouse.approval.decision"
""""approved", "denied" or "pending" (the run paused waiting)."""
APPROVAL_KEY_ID: Final = "pilothouse.approval.key_id"
"""The id of the server API key that decided; absent when decided without a key."""

# --- the decision step (kind="decision") and the answer guard (kind="guard") --------
DECISION: Final = "pilothouse.decision"
"""What the model decided: answer, call, ask or not_covered."""
DECISION_TOOL: Final = "pilothouse.decision.tool"
"""The tool a `call` decision chose."""
DECISION_OPTIONS: Final = "pilothouse.decision.options"
"""The choices the step offered (list[str])."""
DECISION_HELD_BACK: Final = "pilothouse.decision.held_back"
"""Tools not offered, because no value the user gave could fill their identifying
arguments, or the user's message does not ask for them (list[str])."""
DECISION_READING: Final = "pilothouse.decision.reading"
"""How the user's message read before the decision: request, question or unknown
(copilot/user_intent.py)."""
DECISION_FORCED: Final = "pilothouse.decision.forced"
"""Why the runtime decided without asking the model (e.g. "blocked_call", "step_limit",
"knowledge_first", "missing_id", "resumed")."""
DECISION_CHOSEN_BY: Final = "pilothouse.decision.chosen_by"
"""How the tool of an id given was chosen among those that take it (copilot/given_ids.py):
only, nearest, lookup or model."""
DECISION_SIMILARITY: Final = "pilothouse.decision.similarity"
"""The message's similarity to each tool that takes its id (JSON {tool: cosine})."""
DECISION_ASK_FOR: Final = "pilothouse.decision.ask_for"
"""The slots a question back asks for: [{"tool", "parameter"}] of the tools the message
asks for whose identifying value nobody gave (copilot/asked_slots.py)."""
GUARD_DROPPED: Final = "pilothouse.guard.dropped"
"""Sentences kept from the user because they were internal text (list[str]; content)."""
GUARD_REASONS: Final = "pilothouse.guard.reasons"
"""Why each was dropped: runtime_note, call_syntax, function_name, instructions."""
ANSWER_GIVEN: Final = "pilothouse.answer.given"
"""On a span `answer_given`: the reply the runtime gave in place of a request whose
grammar allowed only that text (copilot/quoted_answer.py), as the conversation keeps it
(content)."""
CITATIONS_INVALID: Final = "pilothouse.citations.invalid"
"""[n] markers the answer had that point at no passage (removed from the answer): the
numbers on a guard span, their count on the run span."""
CITATIONS_MODEL: Final = "pilothouse.citations.model"
"""Passage numbers the model cited itself (list[int]; the others were matched)."""
RUN_DECISIONS: Final = "pilothouse.run.decisions"
"""The decision of each decision step of the run, in order (list[str])."""

# --- conversation memory (kind="memory") ------------------------------------------
MEMORY_MESSAGES_KEPT: Final = "pilothouse.memory.messages_kept"
MEMORY_SUMMARISED: Final = "pilothouse.memory.summarised"
"""How many older messages were folded into a summary (int)."""

CONTENT_KEYS: Final = frozenset(
    {
        RUN_QUESTION,
        RUN_ANSWER,
        RETRIEVAL_QUERY,
        RETRIEVAL_CONTEXT_QUERY,
        REQUEST_MESSAGES,
        RESPONSE_MESSAGE,
        TOOL_ARGUMENTS,
        TOOL_RESULT,
        GROUNDED_PROBLEMS,
        GUARD_DROPPED,
        ANSWER_GIVEN,
    }
)
"""Keys whose values are what people wrote or read. Stored locally; exported to
OpenTelemetry only with content capture on. (Retrieval hits are exported as ids and
scores only, their text with content capture.)"""
