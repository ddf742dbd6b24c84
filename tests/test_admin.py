import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.factories import make_conversation, make_heartbeat, make_persona, make_turn
from voice_widget.models import Persona, default_instructions
from voice_widget.providers import TTS_VOICES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["persona", "conversation", "workerheartbeat"])
def test_changelist_renders_for_superuser(admin_client, model):
    persona = make_persona(name="Paula", slug="paula")
    conversation = make_conversation(persona)
    make_turn(conversation, 1, "user", "Wann habt ihr offen?")
    make_heartbeat()
    response = admin_client.get(reverse(f"admin:voice_widget_{model}_changelist"))
    assert response.status_code == 200
    if model != "workerheartbeat":
        assert "Paula" in response.content.decode()


def test_persona_add_page_shows_fieldsets_in_editor_order(admin_client):
    response = admin_client.get(reverse("admin:voice_widget_persona_add"))
    assert response.status_code == 200
    html = response.content.decode()
    headings = [
        "Identity",
        "Conversation",
        "Voice pipeline",
        "Turn-taking",
        "Avatar &amp; preview",
        "Widget look",
        "Access &amp; limits",
        "Tools",
    ]
    positions = [html.index(f">{heading}<") for heading in headings]
    assert positions == sorted(positions)
    assert 'name="instructions"' in html
    assert "end_conversation" in html  # the built-in tool is offered as a choice


def test_persona_change_page_shows_embed_snippet(admin_client):
    persona = make_persona(slug="paula")
    response = admin_client.get(reverse("admin:voice_widget_persona_change", args=[persona.pk]))
    assert response.status_code == 200
    assert "{% voice_widget &quot;paula&quot; %}" in response.content.decode()


def test_persona_add_through_admin_validates_with_clean(admin_client):
    url = reverse("admin:voice_widget_persona_add")
    data = {
        "name": "Nora",
        "slug": "nora",
        "is_active": "on",
        "instructions": "Be kind.",
        "greeting": "",
        "greeting_mode": "say",
        "start_mode": "click",
        "language": "en",
        "pipeline_kind": "pipeline",
        "stt_provider": "deepgram",
        "stt_model": "nova-3",
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "tts_provider": "cartesia",
        "tts_model": "sonic-2",
        "tts_voice": "v1",
        "azure_api_version": "2024-10-01-preview",
        "realtime_provider": "openai",
        "realtime_model": "gpt-realtime",
        "realtime_turn_detection": "server_vad",
        "realtime_eagerness": "auto",
        "turn_detection": "audio",
        "vad_threshold": "0.5",
        "min_endpointing_delay": "0.5",
        "max_endpointing_delay": "3",
        "allow_interruptions": "on",
        "min_interruption_duration": "0.5",
        "min_interruption_words": "0",
        "false_interruption_timeout": "2",
        "noise_cancellation": "off",
        "avatar_provider": "none",
        "preview_mode": "none",
        "theme": "auto",
        "accent_color": "#2563eb",
        "position": "floating",
        "interaction_mode": "voice_text",
        "max_duration_seconds": "600",
        "preview_idle_seconds": "120",
        "daily_budget_unit": "money",
        "enabled_tools": ["end_conversation"],
    }
    data["llm_provider"] = "openai_compatible"
    response = admin_client.post(url, data)
    assert response.status_code == 200  # re-shown with the error, nothing saved
    assert "needs its base URL" in response.content.decode()
    assert not Persona.objects.filter(slug="nora").exists()

    data["llm_provider"] = "openai"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    nora = Persona.objects.get(slug="nora")
    assert nora.enabled_tools == ["end_conversation"]


class _FormData(HTMLParser):
    """What a browser submits for the admin's main form as rendered (its initial values)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form or "name" not in a and tag != "option":
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file"):
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.data.setdefault(a["name"], []).append(a.get("value", default))
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [self._options[0][0]]
            self.data[self._select] = chosen[:1]
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data[self._textarea] = [self._text.removeprefix("\n")]
            self._textarea = None


def rendered_form_data(html: str) -> dict[str, list[str]]:
    parser = _FormData()
    parser.feed(html)
    return parser.data


def test_first_persona_saves_with_only_a_name(admin_client):
    """An editor types a name (the slug fills itself in) and saves: the defaults must work."""
    url = reverse("admin:voice_widget_persona_add")
    data = rendered_form_data(admin_client.get(url).content.decode())
    data.update(name=["Nora"], slug=["nora"])
    assert "instructions" in data and "tts_voice" in data  # the real form was read

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    nora = Persona.objects.get(slug="nora")
    nora.full_clean()  # what the worker reads is a valid persona
    assert nora.instructions == default_instructions()
    assert nora.greeting == "Hello, I'm Nora. How can I help you?"
    assert nora.tts_provider == "cartesia" and nora.tts_model
    assert nora.tts_voice == TTS_VOICES["cartesia"].default_voice("en")
    assert nora.is_active and nora.stt_model and nora.llm_model


def test_position_offers_and_saves_the_full_page_layout(admin_client):
    url = reverse("admin:voice_widget_persona_add")
    html = admin_client.get(url).content.decode()
    assert '<option value="fullpage">' in html
    data = rendered_form_data(html)
    data.update(name=["Help"], slug=["help"], position=["fullpage"])
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    help_persona = Persona.objects.get(slug="help")
    assert help_persona.position == "fullpage"
    assert help_persona.history.latest().position == "fullpage"


def test_voice_field_offers_each_providers_voices_by_name(admin_client):
    persona = make_persona(language="de-DE", tts_provider="cartesia", tts_voice="")
    url = reverse("admin:voice_widget_persona_change", args=[persona.pk])
    html = admin_client.get(url).content.decode()

    # A plain text field (any id works without JavaScript) suggesting the saved provider's voices.
    field = re.search(r'<input[^>]*name="tts_voice"[^>]*>', html).group(0)
    assert 'type="text"' in field and 'list="id_tts_voice_voices_cartesia"' in field
    cartesia = re.search(r'<datalist id="id_tts_voice_voices_cartesia".*?</datalist>', html, re.S)
    assert "3f4ade23-6eb4-4279-ab05-6a144947c4d5" in cartesia.group(0)  # German voice first
    assert cartesia.group(0).index("German") < cartesia.group(0).index("Jacqueline")
    openai = re.search(r'<datalist id="id_tts_voice_voices_openai".*?</datalist>', html, re.S)
    names = re.findall(r'<option value="([a-z]+)">', openai.group(0))
    openai_voices = "alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar"
    assert names == openai_voices.split(" ")
    assert 'id="id_tts_voice_voices_livekit"' in html
    assert 'id="id_realtime_voice_voices_openai"' in html and ">Marin · " in html
    # Where to find more, in the admin help.
    assert 'href="https://play.cartesia.ai/voices"' in html
    assert 'href="https://platform.openai.com/docs/guides/text-to-speech#voice-options"' in html


def test_voice_field_accepts_any_voice_id(admin_client):
    url = reverse("admin:voice_widget_persona_add")
    data = rendered_form_data(admin_client.get(url).content.decode())
    data.update(name=["Ida"], slug=["ida"], tts_voice=["my-cloned-voice-0001"])
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert Persona.objects.get(slug="ida").tts_voice == "my-cloned-voice-0001"


def test_duplicate_action_creates_inactive_copy_with_unique_slug(admin_client):
    persona = make_persona(name="Paula", slug="paula", instructions="Sei freundlich.")
    url = reverse("admin:voice_widget_persona_changelist")
    for _ in range(2):
        response = admin_client.post(
            url, {"action": "duplicate", "_selected_action": [persona.pk]}, follow=True
        )
        assert response.status_code == 200
    copies = Persona.objects.exclude(pk=persona.pk).order_by("pk")
    assert [c.slug for c in copies] == ["paula-copy", "paula-copy-2"]
    assert all(not c.is_active and c.instructions == "Sei freundlich." for c in copies)
    assert copies[0].name == "Paula (copy)"


def test_conversation_change_page_is_read_only_with_ordered_transcript(admin_client):
    conversation = make_conversation()
    make_turn(conversation, 2, "agent", "Second line")
    make_turn(conversation, 1, "user", "First line")
    url = reverse("admin:voice_widget_conversation_change", args=[conversation.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("First line") < html.index("Second line")
    assert 'name="_save"' not in html
    assert admin_client.get(reverse("admin:voice_widget_conversation_add")).status_code == 403


def test_conversation_search_finds_transcript_text(admin_client):
    found = make_conversation(room_name="vw-found")
    make_turn(found, 1, "user", "Do you repair cargo bikes?")
    other = make_conversation(room_name="vw-other")
    make_turn(other, 1, "user", "When are you open?")
    response = admin_client.get(
        reverse("admin:voice_widget_conversation_changelist"), {"q": "cargo"}
    )
    html = response.content.decode()
    assert "vw-found" in html and "vw-other" not in html


def _export(admin_client, action, conversations):
    return admin_client.post(
        reverse("admin:voice_widget_conversation_changelist"),
        {"action": action, "_selected_action": [str(c.pk) for c in conversations]},
    )


def test_export_csv_has_every_line_in_order(admin_client):
    conversation = make_conversation()
    make_turn(conversation, 1, "agent", "Hello, how can I help?")
    make_turn(conversation, 2, "user", "Ein Lastenrad, bitte — mit Motor.", interrupted=True)
    response = _export(admin_client, "export_csv", [conversation])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["sequence"], r["role"], r["text"], r["interrupted"]) for r in rows] == [
        ("1", "agent", "Hello, how can I help?", "no"),
        ("2", "user", "Ein Lastenrad, bitte — mit Motor.", "yes"),
    ]
    assert {r["conversation"] for r in rows} == {str(conversation.pk)}


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"],
)
def test_export_csv_writes_a_visitors_formula_as_text(admin_client, text):
    conversation = make_conversation()
    make_turn(conversation, 1, "user", text)
    response = _export(admin_client, "export_csv", [conversation])
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert rows[0]["text"] == "'" + text


def test_export_json_groups_turns_by_conversation(admin_client):
    first = make_conversation()
    make_turn(first, 1, "user", "Hi")
    second = make_conversation()
    response = _export(admin_client, "export_json", [first, second])
    assert response.status_code == 200
    data = json.loads(response.content)
    by_id = {item["conversation"]: item for item in data}
    assert [t["text"] for t in by_id[str(first.pk)]["turns"]] == ["Hi"]
    assert by_id[str(second.pk)]["turns"] == []
    assert by_id[str(first.pk)]["persona"] == first.persona.slug


def test_duration_filter_and_sorting(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    short = make_conversation(
        room_name="vw-short", started_at=now - timedelta(seconds=20), ended_at=now
    )
    make_conversation(room_name="vw-long", started_at=now - timedelta(minutes=8), ended_at=now)
    url = reverse("admin:voice_widget_conversation_changelist")
    html = admin_client.get(url, {"duration": "lt1"}).content.decode()
    assert "vw-short" in html and "vw-long" not in html
    assert short.duration == timedelta(seconds=20)
    assert admin_client.get(url, {"o": "5"}).status_code == 200


def test_heartbeat_change_page_is_read_only(admin_client):
    heartbeat = make_heartbeat(host="worker-7")
    url = reverse("admin:voice_widget_workerheartbeat_change", args=[heartbeat.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "worker-7" in html
    assert 'name="_save"' not in html


def test_heartbeat_list_shows_stale_worker_as_not_alive(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    make_heartbeat(host="fresh-host")
    make_heartbeat(host="stale-host", last_seen=timezone.now() - timedelta(minutes=5))
    html = admin_client.get(reverse("admin:voice_widget_workerheartbeat_changelist")).content
    html = html.decode()
    fresh_row = html[html.index("fresh-host") :].split("</tr>")[0]
    stale_row = html[html.index("stale-host") :].split("</tr>")[0]
    assert "icon-yes" in fresh_row
    assert "icon-no" in stale_row


def _evaluated_conversation():
    from datetime import timedelta

    from django.utils import timezone

    persona = make_persona()
    persona.instructions = "Version 2 of the prompt."
    persona.save()
    now = timezone.now()
    conversation = make_conversation(
        persona,
        persona_version=persona.history.first(),
        status="ended",
        started_at=now - timedelta(seconds=90),
        ended_at=now,
        end_reason="max_duration",
        usage={"llm_input_tokens": 1200, "tts_characters": 340},
    )
    make_turn(conversation, 1, "agent", "Hello!")
    return conversation


def test_export_csv_carries_version_end_reason_and_usage_per_conversation(admin_client):
    conversation = _evaluated_conversation()
    empty = make_conversation(end_reason="idle_timeout", status="ended")
    response = _export(admin_client, "export_csv", [conversation, empty])
    rows = {
        row["conversation"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))
    }
    row = rows[str(conversation.pk)]
    assert row["persona_version"] == str(conversation.persona_version_id)
    assert row["end_reason"] == "max_duration"
    assert row["duration_seconds"] == "90.0"
    assert json.loads(row["usage"]) == {"llm_input_tokens": 1200, "tts_characters": 340}
    assert row["is_test"] == "no"
    # A conversation nobody spoke in is still exported, for its ending.
    assert rows[str(empty.pk)]["end_reason"] == "idle_timeout"
    assert rows[str(empty.pk)]["text"] == ""


def test_export_json_carries_version_end_reason_and_usage(admin_client):
    conversation = _evaluated_conversation()
    [item] = json.loads(_export(admin_client, "export_json", [conversation]).content)
    assert item["persona_version"] == conversation.persona_version_id
    assert item["end_reason"] == "max_duration"
    assert item["usage"]["llm_input_tokens"] == 1200
    assert item["duration_seconds"] == 90.0
    assert [turn["text"] for turn in item["turns"]] == ["Hello!"]


def test_an_export_column_is_one_line_to_add(admin_client, monkeypatch):
    """Another feature (say, an estimated cost) appends an ExportColumn; both formats get it."""
    from voice_widget import admin as vw_admin

    columns = [*vw_admin.CONVERSATION_EXPORT_COLUMNS, vw_admin.ExportColumn("answer", lambda c: 42)]
    monkeypatch.setattr(vw_admin, "CONVERSATION_EXPORT_COLUMNS", columns)
    conversation = _evaluated_conversation()
    [row] = csv.DictReader(
        io.StringIO(_export(admin_client, "export_csv", [conversation]).content.decode())
    )
    assert row["answer"] == "42"
    [item] = json.loads(_export(admin_client, "export_json", [conversation]).content)
    assert item["answer"] == 42


def test_export_carries_typed_lines_feedback_and_consent(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    consent_at = timezone.now() - timedelta(days=1)
    conversation = make_conversation(
        feedback_rating="down",
        feedback_comment="=cmd|' /C calc'!A0",
        feedback_at=timezone.now(),
        consent_text="Recorded.",
        consent_version="abc123",
        consent_at=consent_at,
    )
    make_turn(conversation, 1, "user", "Do you have cargo bikes?", typed=True)
    make_turn(conversation, 2, "agent", "Yes, three.")

    rows = list(
        csv.DictReader(
            io.StringIO(_export(admin_client, "export_csv", [conversation]).content.decode())
        )
    )
    assert [row["typed"] for row in rows] == ["yes", "no"]
    assert rows[0]["feedback"] == "down"
    assert rows[0]["feedback_comment"] == "'=cmd|' /C calc'!A0"  # never a formula
    assert rows[0]["consent_at"] == consent_at.isoformat()

    (item,) = json.loads(_export(admin_client, "export_json", [conversation]).content)
    assert item["feedback"] == "down"
    assert item["consent_version"] == "abc123"
    assert item["consent_text"] == "Recorded."
    assert [t["typed"] for t in item["turns"]] == [True, False]


def test_conversations_filter_by_feedback_and_consent(admin_client):
    from django.utils import timezone

    make_conversation(room_name="vw-liked", feedback_rating="up")
    make_conversation(room_name="vw-disliked", feedback_rating="down", consent_at=timezone.now())
    make_conversation(room_name="vw-unrated")
    url = reverse("admin:voice_widget_conversation_changelist")
    html = admin_client.get(url, {"feedback_rating__exact": "down"}).content.decode()
    assert "vw-disliked" in html and "vw-liked" not in html and "vw-unrated" not in html
    html = admin_client.get(url, {"consent_at__isempty": "0"}).content.decode()
    assert "vw-disliked" in html and "vw-liked" not in html
    html = admin_client.get(url).content.decode()
    assert "Thumbs down" in html  # the filter's choices and the column


def test_persona_admin_shows_the_visitor_options(admin_client):
    html = admin_client.get(reverse("admin:voice_widget_persona_add")).content.decode()
    for name in ("interaction_mode", "feedback_enabled", "consent_text", "consent_url"):
        assert f'name="{name}"' in html
