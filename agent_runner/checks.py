"""System checks of the worker app: personas whose providers lack credentials.

A deployment check that reads the database: it runs in ``manage.py check --deploy --database
default`` and when the worker starts (``run_voice_agent`` runs it itself), not on every
``runserver`` or management command, where a web process that needs no provider keys would
print it each time. As Django's own database checks, it is tagged ``database`` and queries only
the databases it is given, so a ``check --deploy`` run where no database is reachable (a build
step) does not try to connect. It imports nothing from LiveKit, so it runs in web processes too.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, router

from voice_widget.conf import settings_problem
from voice_widget.models import Persona
from voice_widget.persona_settings import PersonaSettings

from .credentials import LIVEKIT_KEY_VARS, missing_credentials

#: The tag of the worker's checks, which ``run_voice_agent`` runs with the deployment checks.
WORKER_CHECKS_TAG = "agent_runner"

PROVIDER_KEYS_HINT = (
    "Set them in the worker's environment (or as Django settings of the same names); keys are "
    "never stored in the database."
)
LIVEKIT_INFERENCE_HINT = (
    f" LiveKit Inference needs the {' / '.join(LIVEKIT_KEY_VARS)} of a LiveKit Cloud "
    "project (not the livekit-server --dev pair)."
)


def _persona_label(persona: Persona) -> str:
    # Django prints the persona's name (the check's obj) in front of the message.
    return f"Persona {persona.slug!r}"


def _hint(names: list[str]) -> str:
    if set(LIVEKIT_KEY_VARS) & set(names):
        return PROVIDER_KEYS_HINT + LIVEKIT_INFERENCE_HINT
    return PROVIDER_KEYS_HINT


@register(WORKER_CHECKS_TAG, Tags.database, deploy=True)
def check_persona_credentials(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Warning]:
    if settings_problem():
        return []  # VOICE_WIDGET is unreadable: voice_widget.E005 says why
    if router.db_for_read(Persona) not in (databases or ()):
        return []  # no database to read the personas from was given
    try:
        personas = list(Persona.objects.active().order_by("slug"))
    except (DatabaseError, RuntimeError):
        # Not migrated yet, unreachable, or database access not allowed in this process.
        return []
    messages: list[Warning] = []
    for persona in personas:
        settings = PersonaSettings.from_persona(persona)
        voice = missing_credentials(settings, include_avatar=False)
        if voice:
            messages.append(
                Warning(
                    f"{_persona_label(persona)} cannot talk: {', '.join(voice)} "
                    f"{'is' if len(voice) == 1 else 'are'} not set.",
                    hint=_hint(voice),
                    obj=persona,
                    id="agent_runner.W001",
                )
            )
        avatar = [name for name in missing_credentials(settings) if name not in voice]
        if avatar:
            messages.append(
                Warning(
                    f"{_persona_label(persona)} will talk without its avatar: "
                    f"{', '.join(avatar)} is not set.",
                    hint=_hint(avatar),
                    obj=persona,
                    id="agent_runner.W002",
                )
            )
    return messages
