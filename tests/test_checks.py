import pytest
from django.core.checks import run_checks

from voice_widget.checks import check_livekit_settings, check_voice_widget_values

GOOD = {
    "LIVEKIT_URL": "wss://example.livekit.cloud",
    "LIVEKIT_API_KEY": "APIabc",
    "LIVEKIT_API_SECRET": "x" * 40,
}


def ids(messages):
    return sorted(message.id for message in messages)


@pytest.fixture
def production(settings, livekit_env_clear):
    settings.DEBUG = False
    return settings


def test_good_configuration_has_no_messages(production):
    production.VOICE_WIDGET = dict(GOOD)
    assert check_livekit_settings() == []
    assert check_voice_widget_values() == []


def test_e001_missing_credentials_outside_debug(production):
    production.VOICE_WIDGET = {"LIVEKIT_URL": GOOD["LIVEKIT_URL"]}
    messages = check_livekit_settings()
    assert ids(messages) == ["voice_widget.E001"]
    assert "LIVEKIT_API_KEY" in messages[0].msg and "LIVEKIT_API_SECRET" in messages[0].msg
    assert messages[0].hint


def test_e001_not_raised_in_debug_thanks_to_dev_defaults(settings, livekit_env_clear):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {}
    assert check_livekit_settings() == []


def test_e001_satisfied_by_environment(production, monkeypatch):
    production.VOICE_WIDGET = {}
    monkeypatch.setenv("LIVEKIT_URL", GOOD["LIVEKIT_URL"])
    monkeypatch.setenv("LIVEKIT_API_KEY", GOOD["LIVEKIT_API_KEY"])
    monkeypatch.setenv("LIVEKIT_API_SECRET", GOOD["LIVEKIT_API_SECRET"])
    assert check_livekit_settings() == []


@pytest.mark.parametrize("url", ["ftp://livekit.example", "livekit.example:7880", "wss://"])
def test_e002_bad_url_scheme(production, url):
    production.VOICE_WIDGET = {**GOOD, "LIVEKIT_URL": url}
    assert ids(check_livekit_settings()) == ["voice_widget.E002"]


@pytest.mark.parametrize("url", ["ws://a:7880", "wss://a", "http://a", "https://a.b"])
def test_e002_accepts_every_livekit_scheme(production, url):
    production.VOICE_WIDGET = {**GOOD, "LIVEKIT_URL": url}
    assert check_livekit_settings() == []


def test_e003_dev_credentials_outside_debug(production):
    production.VOICE_WIDGET = {**GOOD, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}
    assert ids(check_livekit_settings()) == ["voice_widget.E003"]


def test_e003_not_raised_in_debug(settings):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {**GOOD, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}
    assert check_livekit_settings() == []


def test_e004_short_secret_outside_debug(production):
    production.VOICE_WIDGET = {**GOOD, "LIVEKIT_API_SECRET": "x" * 31}
    assert ids(check_livekit_settings()) == ["voice_widget.E004"]


def test_e005_setting_must_be_a_dict(settings):
    settings.VOICE_WIDGET = ["AGENT_NAME"]
    assert ids(check_voice_widget_values()) == ["voice_widget.E005"]


@pytest.mark.parametrize("value", ["oops", ["AGENT_NAME"], 42])
def test_e005_a_non_mapping_setting_is_reported_by_all_the_checks_not_raised(settings, value):
    settings.VOICE_WIDGET = value
    messages = run_checks(include_deployment_checks=True)
    voice_widget_ids = [m.id for m in messages if m.id and m.id.split(".")[0] == "voice_widget"]
    assert voice_widget_ids == ["voice_widget.E005"]
    [e005] = [m for m in messages if m.id == "voice_widget.E005"]
    assert "VOICE_WIDGET must be a dict" in e005.msg


def test_a_mapping_that_is_not_a_dict_is_a_valid_setting(settings):
    from types import MappingProxyType

    settings.VOICE_WIDGET = MappingProxyType(dict(GOOD))
    assert check_voice_widget_values() == []


def test_reading_a_non_mapping_setting_names_it(settings):
    from django.core.exceptions import ImproperlyConfigured

    from voice_widget.conf import vw_settings

    settings.VOICE_WIDGET = "oops"
    with pytest.raises(ImproperlyConfigured, match="VOICE_WIDGET must be a dict, not str"):
        vw_settings.TOKEN_TTL  # noqa: B018


def test_w001_unknown_key(settings):
    settings.VOICE_WIDGET = {**GOOD, "AGENT_NAM": "typo"}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.W001"]
    assert "AGENT_NAM" in messages[0].msg


@pytest.mark.parametrize("name", ["", "has space", None, "-leading"])
def test_e006_bad_agent_name(settings, name):
    settings.VOICE_WIDGET = {**GOOD, "AGENT_NAME": name}
    assert ids(check_voice_widget_values()) == ["voice_widget.E006"]


@pytest.mark.parametrize("value", [0, -5, "600", 1.5, True])
def test_e007_numbers_must_be_positive_integers(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "TOKEN_TTL": value}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.E007"]
    assert "TOKEN_TTL" in messages[0].msg


@pytest.mark.parametrize("value", [-1, "120", True, 1.5, None])
def test_e007_resume_window_must_be_whole_seconds(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "RESUME_WINDOW": value}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.E007"]
    assert "RESUME_WINDOW" in messages[0].msg


@pytest.mark.parametrize("value", [0, 120])
def test_resume_window_of_zero_or_more_is_accepted(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "RESUME_WINDOW": value}
    assert check_voice_widget_values() == []


@pytest.mark.parametrize("value", [0, -1, "2", True, 1.5])
def test_e007_max_unjoined_per_visitor_must_be_positive_or_none(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "MAX_UNJOINED_PER_VISITOR": value}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.E007"]
    assert "MAX_UNJOINED_PER_VISITOR" in messages[0].msg


@pytest.mark.parametrize("value", [1, 5, None])
def test_max_unjoined_per_visitor_accepts_positive_numbers_and_none(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "MAX_UNJOINED_PER_VISITOR": value}
    assert check_voice_widget_values() == []


def test_e008_bad_throttle_rate(settings):
    settings.VOICE_WIDGET = {**GOOD, "THROTTLE_RATES": {"anon": "ten per minute"}}
    assert ids(check_voice_widget_values()) == ["voice_widget.E008"]


def test_e008_accepts_drf_rates_and_none(settings):
    settings.VOICE_WIDGET = {**GOOD, "THROTTLE_RATES": {"anon": "5/min", "user": None}}
    assert check_voice_widget_values() == []


@pytest.mark.parametrize(
    "origins", [["https://ok.example/path"], "https://ok.example", ["not an origin"]]
)
def test_e009_bad_allowed_origins(settings, origins):
    settings.VOICE_WIDGET = {**GOOD, "ALLOWED_ORIGINS": origins}
    assert ids(check_voice_widget_values()) == ["voice_widget.E009"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROVIDER_MAX_RETRY", -1),
        ("PROVIDER_MAX_RETRY", 1.5),
        ("PROVIDER_MAX_RETRY", "2"),
        ("PROVIDER_RETRY_INTERVAL", -0.5),
        ("PROVIDER_RETRY_INTERVAL", None),
        ("PROVIDER_TIMEOUT", 0),
        ("PROVIDER_TIMEOUT", True),
    ],
)
def test_e011_bad_provider_retry_budget(settings, name, value):
    settings.VOICE_WIDGET = {**GOOD, name: value}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.E011"]
    assert name in messages[0].msg


def test_e011_accepts_no_retries_and_whole_seconds(settings):
    settings.VOICE_WIDGET = {
        **GOOD,
        "PROVIDER_MAX_RETRY": 0,
        "PROVIDER_RETRY_INTERVAL": 0,
        "PROVIDER_TIMEOUT": 5,
        "PROVIDER_FAILURES_TO_END": 1,
    }
    assert check_voice_widget_values() == []


def test_e007_failures_to_end_must_be_a_positive_integer(settings):
    settings.VOICE_WIDGET = {**GOOD, "PROVIDER_FAILURES_TO_END": 0}
    assert ids(check_voice_widget_values()) == ["voice_widget.E007"]


def test_checks_run_through_manage_py_check(production):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    production.VOICE_WIDGET = {}
    with pytest.raises(SystemCheckError, match="voice_widget.E001"):
        call_command("check")


def test_e010_debug_with_a_remote_url_and_no_key(settings, livekit_env_clear, monkeypatch):
    # DEBUG on, a LiveKit Cloud URL and no key: the dev key would sign tokens Cloud refuses.
    settings.DEBUG = True
    settings.VOICE_WIDGET = {}
    monkeypatch.setenv("LIVEKIT_URL", "wss://x.livekit.cloud")
    messages = run_checks(tags=["voice_widget"])
    assert ids(messages) == ["voice_widget.E010"]
    (error,) = messages
    assert error.is_serious()
    assert "wss://x.livekit.cloud" in error.msg
    assert "LIVEKIT_API_KEY" in error.hint and "LIVEKIT_API_SECRET" in error.hint
    assert "ws://127.0.0.1:7880" in error.hint


def test_e010_names_only_what_is_missing(settings, livekit_env_clear):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {"LIVEKIT_URL": "wss://x.livekit.cloud", "LIVEKIT_API_KEY": "APIabc"}
    (error,) = run_checks(tags=["voice_widget"])
    assert error.id == "voice_widget.E010"
    assert "LIVEKIT_API_SECRET" in error.msg and "LIVEKIT_API_KEY" not in error.msg


@pytest.mark.parametrize("url", ["ws://127.0.0.1:7880", "ws://localhost:7880", "ws://[::1]:7880"])
def test_e010_not_raised_for_a_local_dev_server(settings, livekit_env_clear, url):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {"LIVEKIT_URL": url}
    assert run_checks(tags=["voice_widget"]) == []


def test_e010_not_raised_with_real_credentials(settings, livekit_env_clear):
    settings.DEBUG = True
    settings.VOICE_WIDGET = dict(GOOD)
    assert run_checks(tags=["voice_widget"]) == []


@pytest.mark.parametrize("value", [0, -1, "30 days"])
def test_e007_consent_max_age_must_be_a_positive_integer(settings, value):
    settings.VOICE_WIDGET = {**GOOD, "CONSENT_MAX_AGE": value}
    messages = check_voice_widget_values()
    assert ids(messages) == ["voice_widget.E007"]
    assert "CONSENT_MAX_AGE" in messages[0].msg


# --- voice_widget.W002: the throttles' cache (a deployment check) ------------------------------

REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
    }
}


def deploy_ids(**kwargs):
    return [m.id for m in run_checks(include_deployment_checks=True, **kwargs)]


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", "each counts alone"),
        ("django.core.cache.backends.dummy.DummyCache", "not throttled at all"),
        ("django.core.cache.backends.db.DatabaseCache", "not atomic"),
        ("django.core.cache.backends.filebased.FileBasedCache", "not atomic"),
    ],
)
def test_w002_a_throttle_cache_that_cannot_count_across_processes(production, backend, words):
    production.VOICE_WIDGET = dict(GOOD)
    production.CACHES = {"default": {"BACKEND": backend, "LOCATION": "vw-checks"}}
    messages = [m for m in run_checks(include_deployment_checks=True) if m.id.endswith("W002")]
    assert [m.id for m in messages] == ["voice_widget.W002"]
    assert words in messages[0].msg
    assert "RedisCache" in messages[0].hint and "REDIS_URL" in messages[0].hint


def test_w002_only_in_deployment_checks(production):
    production.VOICE_WIDGET = dict(GOOD)  # the tests' cache is LocMemCache
    assert "voice_widget.W002" in deploy_ids()
    assert "voice_widget.W002" not in [m.id for m in run_checks()]


def test_w002_silent_for_a_shared_redis_cache(production):
    production.VOICE_WIDGET = dict(GOOD)
    production.CACHES = REDIS_CACHE
    assert "voice_widget.W002" not in deploy_ids()


def test_w002_silent_when_the_throttles_are_off(production):
    production.VOICE_WIDGET = {**GOOD, "THROTTLE_RATES": {"anon": None, "user": None}}
    assert "voice_widget.W002" not in deploy_ids()
