"""`/v1/responses` under a canary, through the openai SDK on real servers: a request
without `previous_response_id` starts a conversation of its own (the hash decides, so
one question asked many times is still many conversations), and a chain of
`previous_response_id` keeps the model of its first response: on the same server,
after a restart, and on another replica of the same data directory. A client that
resends the history instead keeps its model too. A store that fails costs no answer;
in shadow, responses are mirrored as chat completions are."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import openai

from pilothouse.config import Settings
from pilothouse.pipeline.promotion.controller import Promotions
from tests.pipeline.promotion.conftest import POLICY, serve, wait_for, write_copilot

QUESTION = "Which VPN client do we use?"
FOLLOW_UP = "And which port does it use?"


def sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


async def in_canary(promotions: Promotions, tmp_path: Path) -> tuple[Path, str]:
    """A promotion put straight into its first canary step (30% of new conversations);
    its steps never fill, so it stays there."""
    policy = POLICY.replace("steps: [0.5, 0.75]", "steps: [0.3, 0.6]").replace(
        "min_requests: 2", "min_requests: 1000"
    )
    folder = write_copilot(tmp_path, policy=policy)
    record = promotions.start(await promotions.prepare(folder, "test:better"), started_by="test")
    moved = promotions.flow.enter(record, "canary", 0, "test")
    assert moved is not None
    return folder, moved.promotion_id


def served(stack: ExitStack, settings: Settings, folder: Path) -> openai.OpenAI:
    base, _ = stack.enter_context(serve(settings, folder))
    return sdk(base)


def chains(client: openai.OpenAI, count: int) -> dict[str, str]:
    """New conversations, all asking the same question: their first response's id ->
    its model; `count` of them, more until both models answered some (at most 80: a
    share of 30% leaves all 80 on one model with a chance of 1e-12)."""
    found: dict[str, str] = {}
    while len(found) < count or (len(set(found.values())) < 2 and len(found) < 80):
        response = client.responses.create(model="evaldesk", input=QUESTION)
        found[response.id] = response.model
    return found


async def test_responses_conversations_are_told_apart_and_keep_their_model(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    folder, pid = await in_canary(promotions, tmp_path)
    with ExitStack() as stack:
        client = served(stack, settings, folder)
        first = chains(client, 12)
        # One question asked by 20 conversations: the hash of each conversation decides.
        assert set(first.values()) == {"test:current", "test:better"}, first
        latest = {start: start for start in first}  # the chain's first response -> its latest
        for turn in range(2):
            for start, model in first.items():
                response = client.responses.create(
                    model="evaldesk",
                    input=f"{FOLLOW_UP} ({turn})",
                    previous_response_id=latest[start],
                )
                assert response.model == model, (start, turn)
                latest[start] = response.id
        # A client that keeps the history itself (no previous_response_id).
        kept = client.responses.create(model="evaldesk", input="Who answers on Saturdays?")
        history: list[dict[str, str]] = [
            {"role": "user", "content": "Who answers on Saturdays?"},
            {"role": "assistant", "content": kept.output_text},
            {"role": "user", "content": "And on Sundays?"},
        ]
        again = client.responses.create(model="evaldesk", input=history)  # type: ignore[arg-type]
        assert again.model == kept.model
    # After a restart, and on two replicas of one data directory: the chains go on.
    with ExitStack() as stack:
        one, two = served(stack, settings, folder), served(stack, settings, folder)
        for index, (start, model) in enumerate(first.items()):
            client = one if index % 2 else two
            response = client.responses.create(
                model="evaldesk", input=FOLLOW_UP, previous_response_id=latest[start]
            )
            assert response.model == model, start
        # A chain begun on one replica goes on on the other with its first model.
        begun = chains(one, 8)
        assert set(begun.values()) == {"test:current", "test:better"}, begun
        for start, model in begun.items():
            response = two.responses.create(
                model="evaldesk", input=FOLLOW_UP, previous_response_id=start
            )
            assert response.model == model, start
    assert promotions.store.get(pid).stage == "canary"


async def test_end_users_who_keep_the_history_keep_their_own_model(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    """Under one API key, end users (the request's `user`) who open with the same
    question and then resend the history (no previous_response_id) are each their own
    conversation: each keeps the model of its first response."""
    folder, _ = await in_canary(promotions, tmp_path)
    with serve(settings, folder) as (base, _):
        client = sdk(base)
        first: dict[str, openai.types.responses.Response] = {}
        while len(first) < 6 or (len({r.model for r in first.values()}) < 2 and len(first) < 80):
            user = f"user-{len(first)}"
            first[user] = client.responses.create(model="evaldesk", input=QUESTION, user=user)
        assert {r.model for r in first.values()} == {"test:current", "test:better"}
        for user, response in first.items():
            history: list[dict[str, str]] = [
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": response.output_text},
                {"role": "user", "content": FOLLOW_UP},
            ]
            again = client.responses.create(
                model="evaldesk",
                input=history,  # type: ignore[arg-type]
                user=user,
            )
            assert again.model == response.model, user


async def test_a_canary_whose_store_fails_still_answers_every_user(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    """The sticky choices are stored on the answer's path: a store that fails (here its
    connection is closed under the server) costs the stickiness, never an answer."""
    folder, _ = await in_canary(promotions, tmp_path)
    with serve(settings, folder) as (base, server):
        client = sdk(base)
        first = client.responses.create(model="evaldesk", input=QUESTION)
        server.config.app.context.promotions.store.close()
        models = set(chains(client, 8).values())
        more = client.responses.create(
            model="evaldesk", input=FOLLOW_UP, previous_response_id=first.id
        )
    assert models <= {"test:current", "test:better"} and more.output_text


async def test_responses_requests_are_mirrored_in_shadow(
    promotions: Promotions, folder: Path, settings: Settings
) -> None:
    record = promotions.start(await promotions.prepare(folder, "test:better"), started_by="test")
    moved = promotions.flow.enter(record, "shadow", 0, "test")
    assert moved is not None
    with serve(settings, folder) as (base, _):
        client = sdk(base)
        first = client.responses.create(model="evaldesk", input=QUESTION)
        assert first.model == "test:current"  # shadow: the candidate is never shown
        wait_for(lambda: promotions.store.count(moved.promotion_id, "shadow", 0, "candidate") == 1)
    mirror, user = promotions.store.samples(moved.promotion_id, "shadow")
    assert mirror.arm == "candidate" and user.run_id == mirror.pair == first.id.removeprefix(
        "resp_"
    )
