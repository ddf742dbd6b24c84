"""Which credentials a persona's providers need, which of them the worker lacks, and their values.

Keys never live in the database: provider keys come from the environment (or a Django
setting of the same name), LiveKit's from ``VOICE_WIDGET`` / ``LIVEKIT_*`` like everywhere
else. The variables' names are the catalogue's (``voice_widget.providers``): the worker's
builders ask ``provider_key(provider)`` and never spell one. This module imports nothing from
LiveKit, so the system check can run in web processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from django.conf import settings

from voice_widget import providers as catalogue
from voice_widget.conf import DEV_LIVEKIT_API_KEY, DEV_LIVEKIT_API_SECRET, vw_settings
from voice_widget.models import InteractionMode
from voice_widget.persona_settings import PersonaSettings

#: The pair LiveKit Inference (a LiveKit Cloud service) authenticates with.
LIVEKIT_KEY_VARS = catalogue.env_vars(catalogue.LIVEKIT)


def credential(name: str) -> str | None:
    """A provider key from a Django setting named ``name`` or the environment variable ``name``."""
    value = getattr(settings, name, None) or os.environ.get(name, "")
    value = str(value).strip()
    return value or None


def _livekit_credential(name: str) -> str | None:
    # LiveKit Inference is a LiveKit Cloud service: the livekit-server --dev pair does not count.
    value = getattr(vw_settings, name)
    if value in (DEV_LIVEKIT_API_KEY, DEV_LIVEKIT_API_SECRET):
        return None
    return value or None


def _value(name: str) -> str | None:
    if name in LIVEKIT_KEY_VARS:
        return _livekit_credential(name)
    return credential(name)


def has_credential(name: str) -> bool:
    return _value(name) is not None


def provider_key(provider: str) -> str | None:
    """The key ``provider``'s client authenticates with, from the variable the catalogue names
    (None when unset; a provider with an optional key, e.g. an OpenAI-compatible server, then
    goes without). LiveKit Inference's key and secret: ``livekit_inference_credentials()``."""
    name = catalogue.key_env_var(provider)
    return _value(name) if name else None


def provider_api_url(provider: str) -> str | None:
    """Where ``provider``'s API lives when the catalogue's ``api_url_env_var`` is set (a Django
    setting or environment variable of that name); None: the client's own default."""
    entry = catalogue.get(provider)
    return credential(entry.api_url_env_var) if entry and entry.api_url_env_var else None


def providers_in_use(
    persona: PersonaSettings, *, include_avatar: bool = True, text_only: bool = False
) -> list[str]:
    """The providers a persona's conversations would call, in pipeline order, each once.

    ``text_only``: those of a typed conversation (the console's ``--text``), which uses
    only the language model: no speech recognition, speech synthesis or avatar.
    """
    # A type-only persona's conversations are typed: its speech providers are never called.
    text_only = text_only or persona.interaction_mode == InteractionMode.TEXT
    providers: list[str] = []
    if persona.is_realtime:
        providers.append(persona.realtime_provider)
        if persona.realtime_use_tts and not text_only:
            providers += [persona.tts_provider, persona.tts_fallback_provider]
    elif text_only:
        providers += [persona.llm_provider, persona.llm_fallback_provider]
    else:
        providers += [
            persona.stt_provider,
            persona.stt_fallback_provider,
            persona.llm_provider,
            persona.llm_fallback_provider,
            persona.tts_provider,
            persona.tts_fallback_provider,
        ]
    if include_avatar and not text_only and persona.has_avatar:
        providers.append(persona.avatar_provider)
    return list(dict.fromkeys(p for p in providers if p))


def required_credentials(
    persona: PersonaSettings, *, include_avatar: bool = True, text_only: bool = False
) -> list[str]:
    """Every variable the persona's providers read, in pipeline order, each once."""
    names: Iterable[str] = (
        name
        for provider in providers_in_use(
            persona, include_avatar=include_avatar, text_only=text_only
        )
        for name in catalogue.env_vars(provider)
    )
    return list(dict.fromkeys(names))


def missing_credentials(
    persona: PersonaSettings, *, include_avatar: bool = True, text_only: bool = False
) -> list[str]:
    """Variables the persona's providers need but this process lacks, e.g. ``["DEEPGRAM_API_KEY"]``.

    ``include_avatar=False`` leaves out the avatar's key: a persona whose avatar cannot start
    still talks, voice only, so a worker should not refuse the conversation for it.
    """
    return [
        name
        for name in required_credentials(
            persona, include_avatar=include_avatar, text_only=text_only
        )
        if not has_credential(name)
    ]


def livekit_inference_credentials() -> tuple[str | None, str | None]:
    """Key and secret for LiveKit Inference (None when only the dev pair is configured)."""
    api_key, api_secret = LIVEKIT_KEY_VARS
    return _value(api_key), _value(api_secret)
