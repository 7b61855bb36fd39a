"""A flow served as an OpenAI-compatible model (`pilothouse serve --flow FOLDER`).

A chat flow takes the last user message as its chat input and the earlier user and
assistant turns as its chat history (Prompt flow's `[{inputs, outputs}]` shape); its
chat output is the answer. A standard flow takes the last user message as its one
required input, or as a JSON object of inputs; its answer is its one output, or all
outputs as a JSON object. The answer streams as one piece when the flow has finished.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pilothouse.copilot.flow.runner import Flow
from pilothouse.errors import BadRequestError
from pilothouse.models.base import AdapterEvent, Finish, ProtocolModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import ModelRequest, TextDelta, UsageEvent


class FlowModel(ProtocolModel):
    def __init__(self, flow: Flow, name: str | None = None, *, owns_tracer: bool = False):
        super().__init__(name or flow.name, ModelProfile(family="flow", input_price=None))
        self.flow = flow
        self.owns_tracer = owns_tracer
        """Close the flow's tracer with the model (`pilothouse serve` gives each flow a
        background tracer of its own: spans are written off the event loop)."""

    def inputs_for(self, request: ModelRequest) -> dict[str, Any]:
        turns = [m for m in request.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user":
            raise BadRequestError("the last message must be the user's", model=self.id)
        question = turns[-1].text
        definition = self.flow.definition
        chat_input = definition.chat_input()
        if chat_input is not None:
            values: dict[str, Any] = {chat_input.name: question}
            history = definition.chat_history()
            output = definition.chat_output()
            if history is not None:
                values[history.name] = _history(
                    turns[:-1], chat_input.name, output.name if output else "answer"
                )
            return values
        try:
            parsed = json.loads(question)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        needed = [i for i in definition.inputs if not i.has_default] or list(definition.inputs)
        if not needed:
            return {}
        return {needed[0].name: question}

    def answer_of(self, outputs: dict[str, Any]) -> str:
        chat = self.flow.definition.chat_output()
        if chat is not None:
            value = outputs.get(chat.name)
        elif len(outputs) == 1:
            value = next(iter(outputs.values()))
        else:
            return json.dumps(outputs, ensure_ascii=False, default=str)
        return value if isinstance(value, str) else json.dumps(value, default=str)

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        result = await self.flow.run(self.inputs_for(request))
        yield TextDelta(self.answer_of(result.outputs))
        yield UsageEvent(result.usage)
        yield Finish("stop")

    async def aclose(self) -> None:
        await self.flow.aclose()
        if self.owns_tracer:
            self.flow.tracer.close()


def _history(turns: list[Any], input_name: str, output_name: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    pending: str | None = None
    for message in turns:
        if message.role == "user":
            pending = message.text
        elif pending is not None:
            history.append(
                {"inputs": {input_name: pending}, "outputs": {output_name: message.text}}
            )
            pending = None
    return history
