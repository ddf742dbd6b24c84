"""agent_runner.W001/W002: active personas whose providers lack credentials."""

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command

from agent_runner.checks import check_persona_credentials
from tests.factories import make_persona

pytestmark = pytest.mark.django_db

#: The databases a credential check may read (it reads none unless given some).
DATABASES = ["default"]

KEYS = ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY", "BEY_API_KEY"]


@pytest.fixture
def env(monkeypatch):
    for name in [*KEYS, "AZURE_OPENAI_API_KEY"]:
        monkeypatch.setenv(name, "placeholder")
    return monkeypatch


def test_no_warning_when_every_key_is_set(env):
    make_persona(slug="ben")
    make_persona(slug="avatar", avatar_provider="bey", avatar_id="b9be11b8")
    assert check_persona_credentials(databases=DATABASES) == []


def test_names_the_missing_variables_of_each_persona(env):
    env.delenv("DEEPGRAM_API_KEY")
    env.delenv("CARTESIA_API_KEY")
    ben = make_persona(slug="ben", name="Ben")
    [message] = check_persona_credentials(databases=DATABASES)
    assert message.id == "agent_runner.W001"
    assert message.obj == ben
    assert message.msg == (
        "Persona 'ben' cannot talk: DEEPGRAM_API_KEY, CARTESIA_API_KEY are not set."
    )
    assert "environment" in message.hint
    assert "LiveKit Cloud" not in message.hint


def test_azure_realtime_persona_names_the_azure_key(env):
    env.delenv("AZURE_OPENAI_API_KEY")
    make_persona(
        slug="consultant",
        pipeline_kind="realtime",
        realtime_provider="azure_openai",
        realtime_model="gpt-realtime",
        turn_detection="realtime_llm",
        azure_endpoint="https://r.openai.azure.com",
    )
    make_persona(slug="ben")
    [message] = check_persona_credentials(databases=DATABASES)
    assert "'consultant'" in message.msg
    assert "AZURE_OPENAI_API_KEY is not set" in message.msg


def test_missing_avatar_key_is_its_own_warning(env):
    env.delenv("BEY_API_KEY")
    make_persona(slug="avatar", avatar_provider="bey", avatar_id="b9be11b8")
    [message] = check_persona_credentials(databases=DATABASES)
    assert message.id == "agent_runner.W002"
    assert "without its avatar: BEY_API_KEY is not set" in message.msg


def test_inactive_personas_are_not_checked(env):
    env.delenv("OPENAI_API_KEY")
    make_persona(slug="draft", is_active=False)
    assert check_persona_credentials(databases=DATABASES) == []


def test_livekit_inference_names_the_livekit_variables(env, settings, livekit_env_clear):
    settings.DEBUG = False
    settings.VOICE_WIDGET = {"LIVEKIT_URL": "wss://x.livekit.cloud"}
    make_persona(slug="cloud", stt_provider="livekit", stt_model="deepgram/nova-3")
    [message] = check_persona_credentials(databases=DATABASES)
    assert "LIVEKIT_API_KEY, LIVEKIT_API_SECRET are not set" in message.msg
    assert "LiveKit Cloud project" in message.hint


def test_quiet_in_every_command_but_check_deploy(env, capsys):
    # runserver and every management command run the plain checks: a web process needs
    # no provider keys, so the warnings would only be noise there.
    env.delenv("OPENAI_API_KEY")
    make_persona(slug="ben")
    assert not [m for m in run_checks() if m.id.startswith("agent_runner.")]
    call_command("check")
    assert "agent_runner.W001" not in capsys.readouterr().err


def test_shows_in_manage_py_check_deploy(env, capsys):
    env.delenv("OPENAI_API_KEY")
    make_persona(slug="ben")
    deploy = run_checks(include_deployment_checks=True, databases=DATABASES)
    assert "agent_runner.W001" in {m.id for m in deploy}
    # warnings do not fail it
    call_command("check", "--deploy", "--database", "default", "--tag", "agent_runner")
    err = capsys.readouterr().err
    assert "agent_runner.W001" in err
    assert "OPENAI_API_KEY is not set" in err


def test_reads_no_database_unless_given_one(env, django_assert_num_queries):
    # As Django's own database checks: a plain "check --deploy" (a build step, say) does
    # not connect to a database; "--database default" and the worker's start do.
    env.delenv("OPENAI_API_KEY")
    make_persona(slug="ben")
    with django_assert_num_queries(0):
        assert check_persona_credentials() == []
        assert not [
            m for m in run_checks(include_deployment_checks=True) if m.id.startswith("agent_")
        ]
    assert Tags.database in check_persona_credentials.tags


def test_unmigrated_database_is_skipped(env, django_db_blocker):
    with django_db_blocker.block():
        assert check_persona_credentials(databases=DATABASES) == []


def test_check_runs_in_a_web_process_without_livekit_agents():
    import os
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['livekit.agents'] = None\n"
        "import django; django.setup()\n"
        "from django.core.checks import run_checks\n"
        "from agent_runner.checks import check_persona_credentials\n"
        "run_checks(\n"
        "    tags=['agent_runner'], include_deployment_checks=True, databases=['default']\n"
        ")\n"
        "assert 'livekit.agents' not in {n for n, m in sys.modules.items() if m}\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr
