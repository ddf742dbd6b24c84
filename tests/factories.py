"""Small factory functions for test objects (no fixtures files)."""

from __future__ import annotations

import itertools
from typing import Any

from django.utils import timezone

from voice_widget.models import Conversation, Persona, Turn, WorkerHeartbeat

_counter = itertools.count(1)


def persona_fields(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    fields: dict[str, Any] = {
        "name": f"Persona {n}",
        "slug": f"persona-{n}",
        "instructions": "You are a helpful assistant of a bicycle shop.",
        "greeting": "Hello! How can I help?",
        "language": "en",
        "tts_voice": "test-voice-id",
    }
    fields.update(overrides)
    return fields


def make_persona(**overrides: Any) -> Persona:
    persona = Persona(**persona_fields(**overrides))
    persona.full_clean()
    persona.save()
    return persona


def make_conversation(persona: Persona | None = None, **overrides: Any) -> Conversation:
    persona = persona or make_persona()
    n = next(_counter)
    fields: dict[str, Any] = {
        "persona": persona,
        "persona_snapshot": persona.snapshot(),
        "room_name": f"vw-test-{n}",
        "identity": f"visitor-{n}",
    }
    fields.update(overrides)
    return Conversation.objects.create(**fields)


def make_turn(conversation: Conversation, sequence: int, role: str, text: str, **kw: Any) -> Turn:
    return Turn.objects.create(
        conversation=conversation,
        sequence=sequence,
        role=role,
        text=text,
        created_at=kw.pop("created_at", timezone.now()),
        **kw,
    )


def make_heartbeat(**overrides: Any) -> WorkerHeartbeat:
    n = next(_counter)
    now = timezone.now()
    fields: dict[str, Any] = {
        "worker_id": f"worker-{n}",
        "agent_name": "voice-widget-test",
        "host": "test-host",
        "pid": 1000 + n,
        "started_at": now,
        "last_seen": now,
    }
    fields.update(overrides)
    return WorkerHeartbeat.objects.create(**fields)
