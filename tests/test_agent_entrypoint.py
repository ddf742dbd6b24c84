"""The job entrypoint's refusals, run on livekit-agents' fake job context."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from livekit.agents.testing import fake_job_context

from agent_runner import protocol, worker
from agent_runner.worker import (
    JobSettings,
    clicked_from_metadata,
    conversation_id_from_metadata,
    describe_setup_error,
    run_job,
    session_end,
)
from tests.agent_support import build_runner, double_plan, new_conversation, reload
from tests.doubles.llm import DoubleLLM
from tests.doubles.room import DoubleRoom
from voice_widget.models import ConversationStatus

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

PROVIDER_KEYS = ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY")


def plan_factory_never_called(persona, *, vad):
    raise AssertionError("a refused job must not build a session")


def no_missing_credentials(persona):
    return []


async def run_refused_job(metadata: str, settings: JobSettings, visitor: str | None = None):
    room = DoubleRoom(visitor=visitor)
    shutdowns = []
    with fake_job_context(room=room, job_metadata=metadata) as ctx:
        ctx.shutdown = lambda reason="": shutdowns.append(reason)
        runner = await run_job(ctx, settings)
    return runner, room, shutdowns


def metadata_for(conversation) -> str:
    return json.dumps({"conversation": str(conversation.pk)})


def test_conversation_id_comes_from_the_dispatch_metadata():
    assert conversation_id_from_metadata('{"conversation": "abc"}') == "abc"
    assert conversation_id_from_metadata("") is None
    assert conversation_id_from_metadata("not json") is None
    assert conversation_id_from_metadata('["conversation"]') is None


def test_the_click_comes_from_the_dispatch_metadata():
    assert clicked_from_metadata('{"conversation": "abc", "clicked": true}') is True
    assert clicked_from_metadata('{"conversation": "abc"}') is False
    assert clicked_from_metadata('{"conversation": "abc", "clicked": "yes"}') is False
    assert clicked_from_metadata("not json") is False


@pytest.mark.parametrize(
    ("metadata", "immediately"),
    [({"clicked": True}, True), ({}, False)],
    ids=["clicked", "previewed"],
)
async def test_the_click_in_the_metadata_starts_the_conversation_at_once(
    monkeypatch, metadata, immediately
):
    from agent_runner.conversation import ConversationRunner

    conversation = await new_conversation()  # its persona waits for the click
    started = []

    async def start(self, **options):  # the room IO itself is the e2e tests' to run
        started.append(self.start_immediately)

    monkeypatch.setattr(ConversationRunner, "start", start)
    settings = JobSettings(
        plan_factory=lambda persona, *, vad: double_plan(DoubleLLM()),
        missing_credentials=no_missing_credentials,
        start_avatar=no_avatar,
    )
    job_metadata = json.dumps({"conversation": str(conversation.pk), **metadata})
    with fake_job_context(room=DoubleRoom(), job_metadata=job_metadata) as ctx:
        ctx.shutdown = lambda reason="": None
        await run_job(ctx, settings)
    assert started == [immediately]


async def no_avatar(plan, session, room):
    return None


async def test_unknown_conversation_is_refused_and_the_job_ends():
    settings = JobSettings(
        plan_factory=plan_factory_never_called, missing_credentials=no_missing_credentials
    )
    runner, room, shutdowns = await run_refused_job(
        json.dumps({"conversation": "0b6d5b3e-2a0e-4c89-9d7e-0e7d8f2c1a11"}), settings
    )
    assert runner is None
    assert len(shutdowns) == 1 and "Unknown conversation" in shutdowns[0]
    assert room.local_participant.attributes[protocol.ATTR_END_REASON] == "error"


async def test_inactive_persona_fails_the_conversation_with_the_reason():
    conversation = await new_conversation()

    @sync_to_async
    def deactivate():
        conversation.persona.is_active = False
        conversation.persona.save(update_fields=["is_active"])

    await deactivate()
    settings = JobSettings(
        plan_factory=plan_factory_never_called, missing_credentials=no_missing_credentials
    )
    runner, room, shutdowns = await run_refused_job(
        metadata_for(conversation), settings, visitor=conversation.identity
    )

    assert runner is None and len(shutdowns) == 1
    failed = await reload(conversation)
    assert failed.status == ConversationStatus.FAILED and failed.end_reason == "error"
    assert "inactive" in failed.end_detail
    assert room.local_participant.rpc_calls[0]["payload"] == {"reason": "error"}


async def test_missing_provider_key_fails_the_conversation_naming_the_variable(monkeypatch):
    for name in PROVIDER_KEYS:
        monkeypatch.setenv(name, "test-key")
    monkeypatch.delenv("DEEPGRAM_API_KEY")
    conversation = await new_conversation()  # the default pipeline: Deepgram, OpenAI, Cartesia
    # The real credentials check of agent_runner.pipeline, as in production.
    settings = JobSettings(plan_factory=plan_factory_never_called)

    runner, _room, _ = await run_refused_job(metadata_for(conversation), settings)

    assert runner is None
    failed = await reload(conversation)
    assert failed.status == ConversationStatus.FAILED
    assert "DEEPGRAM_API_KEY" in failed.end_detail
    assert "OPENAI_API_KEY" not in failed.end_detail


async def test_a_session_that_cannot_be_built_fails_the_conversation_with_the_reason():
    conversation = await new_conversation()

    def plan_factory(persona, *, vad):
        raise ValueError("bad voice id")

    settings = JobSettings(plan_factory=plan_factory, missing_credentials=no_missing_credentials)
    runner, _room, shutdowns = await run_refused_job(metadata_for(conversation), settings)

    assert runner is None and len(shutdowns) == 1
    failed = await reload(conversation)
    assert failed.status == ConversationStatus.FAILED
    assert failed.end_detail == "The voice session could not be built: ValueError: bad voice id"


async def test_the_plan_factory_gets_the_persona_snapshot_and_the_process_vad():
    conversation = await new_conversation()
    seen = {}

    def plan_factory(persona, *, vad):
        seen.update(persona=persona, vad=vad)
        raise RuntimeError("stop here")

    settings = JobSettings(plan_factory=plan_factory, missing_credentials=no_missing_credentials)
    room = DoubleRoom()
    with fake_job_context(room=room, job_metadata=metadata_for(conversation)) as ctx:
        ctx.proc.userdata["vad"] = "the-process-vad"
        ctx.shutdown = lambda reason="": None
        await run_job(ctx, settings)

    assert seen["persona"].slug == conversation.persona_snapshot["slug"]
    assert seen["vad"] == "the-process-vad"


async def test_the_session_is_built_while_the_agent_joins_the_room():
    # The join below completes only once the plan is built: run one after the other, the
    # job would wait for the join forever.
    conversation = await new_conversation()
    built = asyncio.Event()

    def plan_factory(persona, *, vad):
        built.set()
        raise RuntimeError("stop here")

    settings = JobSettings(plan_factory=plan_factory, missing_credentials=no_missing_credentials)
    with fake_job_context(room=DoubleRoom(), job_metadata=metadata_for(conversation)) as ctx:
        ctx.shutdown = lambda reason="": None
        join = ctx.connect

        async def connect_once_built():
            await asyncio.wait_for(built.wait(), 10)
            await join()

        ctx.connect = connect_once_built
        assert await run_job(ctx, settings) is None

    failed = await reload(conversation)
    assert failed.end_detail == "The voice session could not be built: RuntimeError: stop here"


def test_setup_errors_name_no_download_command():
    detail = describe_setup_error(RuntimeError("turn-detector model could not find a file"))
    assert "download-files" not in detail


def test_double_plan_is_a_session_plan():
    plan = double_plan(DoubleLLM())
    assert plan.session_kwargs["vad"] is None and plan.avatar is None


async def test_a_failed_join_fails_the_conversation_with_the_room_and_cause(caplog):
    conversation = await new_conversation()
    settings = JobSettings(
        plan_factory=plan_factory_never_called, missing_credentials=no_missing_credentials
    )
    shutdowns = []

    async def connect_refused():
        raise ConnectionError("the LiveKit server refused the join (401)")

    with fake_job_context(room=DoubleRoom(), job_metadata=metadata_for(conversation)) as ctx:
        ctx.shutdown = lambda reason="": shutdowns.append(reason)
        ctx.connect = connect_refused
        with caplog.at_level("ERROR", logger="agent_runner"):
            assert await run_job(ctx, settings) is None
        room_name = ctx.job.room.name

    failed = await reload(conversation)
    assert failed.status == ConversationStatus.FAILED and failed.end_reason == "error"
    assert failed.end_detail == (
        f"The agent could not join room {room_name}: "
        "ConnectionError: the LiveKit server refused the join (401)"
    )
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert str(conversation.pk) in errors[0] and room_name in errors[0]
    assert len(shutdowns) == 1 and "join failed" in shutdowns[0]


async def test_session_end_finishes_the_ending_before_livekit_disconnects_the_room():
    """livekit-agents' shutdown order: close the session, await ``on_session_end``, then
    disconnect the room. When ``session_end`` returns, the visitor has been told."""
    from types import SimpleNamespace

    conversation = await new_conversation()
    runner, room = build_runner(conversation, DoubleLLM(), start_immediately=True)
    await runner.start()
    ctx = SimpleNamespace(job=SimpleNamespace(id="job-double"))
    worker._runners[ctx.job.id] = runner

    await runner.session.aclose()  # what the job's shutdown does first
    await session_end(ctx)

    assert runner.finished and ctx.job.id not in worker._runners
    told = [
        call for call in room.local_participant.rpc_calls if call["method"] == protocol.RPC_ENDED
    ]
    assert told == [
        {
            "destination": conversation.identity,
            "method": protocol.RPC_ENDED,
            "payload": {"reason": "worker_shutdown"},
            "response_timeout": protocol.ENDED_RPC_TIMEOUT,
        }
    ]
    assert (await reload(conversation)).end_reason == "worker_shutdown"
    await session_end(ctx)  # a job without a runner (refused, or already ended): nothing


def test_the_server_registers_session_end_as_on_session_end():
    server = worker.build_server(agent_name="shop-agent", port=0, heartbeat=False)
    assert server._session_end_fnc is session_end


async def test_credentials_are_checked_once_per_job(monkeypatch):
    from agent_runner import pipeline

    for name in PROVIDER_KEYS:
        monkeypatch.setenv(name, "test-key")
    checks = []
    real_check = pipeline.missing_credentials

    def counting_check(persona, **options):
        checks.append(persona)
        return real_check(persona, **options)

    monkeypatch.setattr(pipeline, "missing_credentials", counting_check)
    conversation = await new_conversation()
    built = []

    def plan_factory(persona, *, vad):
        built.append(worker._default_plan_factory(persona, vad=vad))  # the production factory
        raise RuntimeError("stop here")

    with fake_job_context(room=DoubleRoom(), job_metadata=metadata_for(conversation)) as ctx:
        ctx.shutdown = lambda reason="": None
        await run_job(ctx, JobSettings(plan_factory=plan_factory))

    assert len(built) == 1  # the session plan was built ...
    assert len(checks) == 1  # ... and the keys were checked once, before it
