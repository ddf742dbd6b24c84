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
