import pytest

from voice_widget.conf import DEFAULTS, vw_settings


def test_defaults_apply_to_unset_keys(settings):
    settings.VOICE_WIDGET = {}
    assert vw_settings.AGENT_NAME == "voice-widget"
    assert vw_settings.TOKEN_TTL == 600
    assert vw_settings.MAX_CONTEXT_BYTES == 8192
    assert vw_settings.THROTTLE_RATES == {"anon": "10/minute", "user": "30/minute"}


def test_override_settings_is_seen_at_once(settings):
    settings.VOICE_WIDGET = {"AGENT_NAME": "first"}
    assert vw_settings.AGENT_NAME == "first"
    settings.VOICE_WIDGET = {"AGENT_NAME": "second", "TOKEN_TTL": 30}
    assert vw_settings.AGENT_NAME == "second"
    assert vw_settings.TOKEN_TTL == 30


def test_unknown_attribute_is_an_error():
    try:
        vw_settings.NOT_A_SETTING  # noqa: B018
    except AttributeError as exc:
        assert "NOT_A_SETTING" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_livekit_values_fall_back_to_environment(settings, monkeypatch):
    settings.VOICE_WIDGET = {}
    settings.DEBUG = False
    monkeypatch.setenv("LIVEKIT_URL", "wss://from-env.example")
    monkeypatch.setenv("LIVEKIT_API_KEY", "APIenv")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s" * 40)
    assert vw_settings.LIVEKIT_URL == "wss://from-env.example"
    assert vw_settings.LIVEKIT_API_KEY == "APIenv"
    assert vw_settings.LIVEKIT_API_SECRET == "s" * 40
    assert vw_settings.livekit_configured


def test_settings_win_over_environment(settings, monkeypatch):
    settings.VOICE_WIDGET = {"LIVEKIT_URL": "wss://from-settings.example"}
    monkeypatch.setenv("LIVEKIT_URL", "wss://from-env.example")
    assert vw_settings.LIVEKIT_URL == "wss://from-settings.example"


def test_dev_defaults_only_in_debug(settings, livekit_env_clear):
    settings.VOICE_WIDGET = {}
    settings.DEBUG = True
    assert vw_settings.LIVEKIT_URL == "ws://127.0.0.1:7880"
    assert vw_settings.LIVEKIT_API_KEY == "devkey"
    assert vw_settings.LIVEKIT_API_SECRET == "secret"
    assert vw_settings.livekit_configured
    settings.DEBUG = False
    assert vw_settings.LIVEKIT_URL is None
    assert vw_settings.LIVEKIT_API_KEY is None
    assert vw_settings.LIVEKIT_API_SECRET is None
    assert not vw_settings.livekit_configured


def test_every_documented_key_reads_as_an_attribute(settings):
    settings.VOICE_WIDGET = {"TOKEN_TTL": 60}
    data = {key: getattr(vw_settings, key) for key in DEFAULTS}
    assert set(data) == set(DEFAULTS)
    assert data["TOKEN_TTL"] == 60


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:7880", "ws://localhost:7880", "ws://[::1]:7880", "http://127.0.0.2"]
)
def test_dev_key_and_secret_serve_a_local_server_in_debug(settings, livekit_env_clear, url):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {"LIVEKIT_URL": url}
    assert vw_settings.LIVEKIT_API_KEY == "devkey"
    assert vw_settings.LIVEKIT_API_SECRET == "secret"
    assert vw_settings.livekit_configured


@pytest.mark.parametrize("url", ["wss://x.livekit.cloud", "ws://192.168.1.20:7880"])
def test_dev_key_and_secret_never_sign_for_a_remote_server(
    settings, livekit_env_clear, monkeypatch, url
):
    # The URL from the environment, as LiveKit's own tools set it; no key beside it.
    settings.DEBUG = True
    settings.VOICE_WIDGET = {}
    monkeypatch.setenv("LIVEKIT_URL", url)
    assert url == vw_settings.LIVEKIT_URL
    assert vw_settings.LIVEKIT_API_KEY is None
    assert vw_settings.LIVEKIT_API_SECRET is None
    assert not vw_settings.livekit_configured
