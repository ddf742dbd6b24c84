"""System checks of the worker app: personas whose providers lack credentials.

Runs in ``manage.py check`` and when the worker starts. It imports nothing from LiveKit, so
it also runs in web processes, where it only warns: a web server needs no provider keys.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Warning, register
from django.db import DatabaseError

from voice_widget.models import Persona

from .credentials import missing_credentials

PROVIDER_KEYS_HINT = (
    "Set them in the worker's environment (or as Django settings of the same names); keys are "
    "never stored in the database."
)
LIVEKIT_INFERENCE_HINT = (
    " LiveKit Inference needs the LIVEKIT_API_KEY / LIVEKIT_API_SECRET of a LiveKit Cloud "
    "project (not the livekit-server --dev pair)."
)


def _persona_label(persona: Persona) -> str:
    # Django prints the persona's name (the check's obj) in front of the message.
    return f"Persona {persona.slug!r}"


def _hint(names: list[str]) -> str:
    if "LIVEKIT_API_KEY" in names or "LIVEKIT_API_SECRET" in names:
        return PROVIDER_KEYS_HINT + LIVEKIT_INFERENCE_HINT
    return PROVIDER_KEYS_HINT


@register("agent_runner")
def check_persona_credentials(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        personas = list(Persona.objects.active().order_by("slug"))
    except (DatabaseError, RuntimeError):
        # Not migrated yet, unreachable, or database access not allowed in this process.
        return []
    messages: list[Warning] = []
    for persona in personas:
        snapshot = persona.snapshot()
        voice = missing_credentials(snapshot, include_avatar=False)
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
        avatar = [name for name in missing_credentials(snapshot) if name not in voice]
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
