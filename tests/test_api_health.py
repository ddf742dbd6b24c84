"""GET /voice-widget/api/health/: can a conversation start right now?"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_heartbeat

pytestmark = pytest.mark.django_db

URL = "/voice-widget/api/health/"


def test_health_counts_workers_with_a_fresh_heartbeat(client):
    make_heartbeat()
    make_heartbeat(last_seen=timezone.now() - timedelta(seconds=5))
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "livekit_configured": True,
        "agents_available": 2,
        "agent_name": "voice-widget-test",
    }


def test_health_ignores_stale_stopped_and_other_agents_heartbeats(client, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "HEARTBEAT_TIMEOUT": 20}
    make_heartbeat(last_seen=timezone.now() - timedelta(seconds=60))
    make_heartbeat(stopped_at=timezone.now())
    make_heartbeat(agent_name="someone-elses-agent")
    assert client.get(URL).json()["agents_available"] == 0


def test_health_timeout_comes_from_settings(client, settings):
    make_heartbeat(last_seen=timezone.now() - timedelta(seconds=60))
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "HEARTBEAT_TIMEOUT": 120}
    assert client.get(URL).json()["agents_available"] == 1


def test_health_follows_the_agent_name_setting(client, settings):
    make_heartbeat(agent_name="shop-agent")
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "AGENT_NAME": "shop-agent"}
    body = client.get(URL).json()
    assert body["agent_name"] == "shop-agent"
    assert body["agents_available"] == 1


def test_health_says_when_livekit_is_not_configured(client, settings, livekit_env_clear):
    settings.DEBUG = False
    settings.VOICE_WIDGET = {"AGENT_NAME": "voice-widget-test"}
    assert client.get(URL).json()["livekit_configured"] is False


def test_health_is_never_cached(client):
    assert "no-cache" in client.get(URL)["Cache-Control"]


def test_health_says_not_configured_for_a_remote_server_without_key_in_debug(
    client, settings, livekit_env_clear
):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {
        "AGENT_NAME": "voice-widget-test",
        "LIVEKIT_URL": "wss://x.livekit.cloud",
    }
    assert client.get(URL).json()["livekit_configured"] is False
