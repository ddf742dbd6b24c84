import pytest

from tests.factories import make_conversation
from voice_widget.lifecycle import end_conversation
from voice_widget.models import ConversationStatus
from voice_widget.signals import conversation_ended

pytestmark = pytest.mark.django_db


def test_end_conversation_ends_once_and_signals_once():
    conversation = make_conversation()
    received = []

    def receiver(sender, conversation, reason, **kwargs):
        received.append((conversation.pk, reason))

    conversation_ended.connect(receiver)
    try:
        assert end_conversation(conversation.pk, "client_end") is True
        assert end_conversation(conversation.pk, "participant_left") is False
    finally:
        conversation_ended.disconnect(receiver)
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.ENDED
    assert conversation.end_reason == "client_end"
    assert conversation.ended_at is not None
    assert received == [(conversation.pk, "client_end")]


def test_failed_conversation_keeps_its_reason():
    conversation = make_conversation()
    assert end_conversation(conversation.pk, "error", detail="Persona is inactive", failed=True)
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.FAILED
    assert conversation.end_detail == "Persona is inactive"


def test_unknown_reason_is_refused():
    conversation = make_conversation()
    with pytest.raises(ValueError):
        end_conversation(conversation.pk, "because")


@pytest.mark.django_db(transaction=True)
async def test_statuses_move_only_along_the_written_transitions():
    from asgiref.sync import sync_to_async

    from voice_widget.lifecycle import TRANSITIONS, amark_agent_joined, amark_started
    from voice_widget.models import OPEN_STATUSES, Conversation

    conversation = await sync_to_async(make_conversation)()
    assert await amark_agent_joined(conversation.pk) is True
    assert await amark_agent_joined(conversation.pk) is False  # ready is not created
    assert await amark_started(conversation.pk) is True
    assert await amark_agent_joined(conversation.pk) is False  # never back to ready
    assert await amark_started(conversation.pk) is False
    await sync_to_async(end_conversation)(conversation.pk, "client_end")
    assert await amark_started(conversation.pk) is False  # an ending is final
    row = await Conversation.objects.aget(pk=conversation.pk)
    assert row.status == ConversationStatus.ENDED
    assert row.agent_joined_at and row.started_at and row.ended_at
    # The open statuses are exactly those that can still end.
    assert {s for s, nexts in TRANSITIONS.items() if ConversationStatus.ENDED in nexts} == set(
        OPEN_STATUSES
    )
    assert set(TRANSITIONS) == set(ConversationStatus.values)


@pytest.mark.django_db(transaction=True)
async def test_a_persona_that_starts_at_once_goes_from_created_to_active():
    from asgiref.sync import sync_to_async

    from voice_widget.lifecycle import amark_started
    from voice_widget.models import Conversation

    conversation = await sync_to_async(make_conversation)()
    assert await amark_started(conversation.pk) is True
    assert (await Conversation.objects.aget(pk=conversation.pk)).status == "active"
