"""``PersonaSettings``: the one typed view of the persona a conversation runs with."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import pytest

from tests.factories import make_conversation, make_persona
from voice_widget.models import Conversation, Persona
from voice_widget.persona_settings import NOT_SETTINGS, PersonaSettings


def test_every_persona_setting_has_a_typed_field():
    settings_fields = {field.name for field in dataclasses.fields(PersonaSettings)}
    persona_fields = {field.attname for field in Persona._meta.concrete_fields} - NOT_SETTINGS
    assert settings_fields == persona_fields


def test_keys_an_older_snapshot_lacks_get_the_models_defaults():
    settings = PersonaSettings.from_snapshot({"slug": "old", "instructions": "Be brief."})

    assert settings.slug == "old" and settings.instructions == "Be brief."
    assert settings.turn_detection == "audio"
    assert settings.min_interruption_words == 0
    assert settings.preemptive_generation is False
    assert settings.false_interruption_timeout == 2.0
    assert settings.closing_message == Persona._meta.get_field("closing_message").default
    # Choices come back as their plain values, like a snapshot stores them.
    assert type(settings.turn_detection) is str and type(settings.greeting_mode) is str
    assert settings.enabled_tools == ()


def test_a_full_snapshot_reads_back_with_its_types():
    persona = Persona(
        name="Nora",
        slug="nora",
        daily_budget=Decimal("2.50"),
        enabled_tools=["end_conversation"],
        llm_temperature=0.4,
    )
    settings = PersonaSettings.from_snapshot(persona.snapshot())

    assert settings.daily_budget == Decimal("2.50")  # stored as the string "2.50"
    assert settings.enabled_tools == ("end_conversation",)
    assert settings.llm_temperature == 0.4
    assert settings.name == "Nora"


def test_keys_of_settings_removed_since_are_ignored():
    settings = PersonaSettings.from_snapshot({"slug": "old", "retired_setting": True})
    assert not hasattr(settings, "retired_setting")


def test_derived_values():
    settings = PersonaSettings.from_snapshot(
        {"language": "pt-BR", "stt_keyterms": " Rohloff \n\nLinden\n", "avatar_provider": "none"}
    )
    assert settings.base_language == "pt"
    assert settings.keyterms == ["Rohloff", "Linden"]
    assert settings.has_avatar is False
    assert PersonaSettings.from_snapshot({"pipeline_kind": "realtime"}).is_realtime


def test_settings_are_read_only():
    settings = PersonaSettings.from_snapshot({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.greeting = "changed"  # type: ignore[misc]


@pytest.mark.django_db
def test_the_snapshot_wins_over_later_persona_edits():
    persona = make_persona(greeting="Hello!", max_duration_seconds=300)
    conversation = make_conversation(persona)
    persona.greeting = "Edited after the conversation began"
    persona.max_duration_seconds = 60
    persona.save()

    settings = Conversation.objects.get(pk=conversation.pk).persona_settings

    assert settings.greeting == "Hello!"
    assert settings.max_duration_seconds == 300


@pytest.mark.django_db
def test_the_settings_are_built_once_per_conversation_object():
    conversation = make_conversation()
    assert conversation.persona_settings is conversation.persona_settings


@pytest.mark.django_db
def test_a_conversation_from_before_snapshots_uses_the_persona_once_and_says_so(caplog):
    persona = make_persona(greeting="Hi there")
    conversation = Conversation.objects.get(pk=make_conversation(persona, persona_snapshot={}).pk)

    with caplog.at_level(logging.WARNING, logger="voice_widget.models"):
        settings = conversation.persona_settings
        assert conversation.persona_settings is settings

    assert settings.greeting == "Hi there" and settings.slug == persona.slug
    lines = [r for r in caplog.records if "no persona snapshot" in r.getMessage()]
    assert len(lines) == 1 and str(conversation.pk) in lines[0].getMessage()
