"""Which credentials a persona's providers need, and which of them the worker lacks.

Keys never live in the database: provider keys come from the environment (or a Django
setting of the same name), LiveKit's from ``VOICE_WIDGET`` / ``LIVEKIT_*`` like everywhere
else. This module imports nothing from LiveKit, so the system check can run in web processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

from voice_widget.conf import DEV_LIVEKIT_API_KEY, DEV_LIVEKIT_API_SECRET, vw_settings

#: The environment variable(s) each provider reads its key from. An OpenAI-compatible
#: server (Ollama, vLLM…) often needs no key; ``OPENAI_COMPATIBLE_API_KEY`` is used when set.
PROVIDER_ENV_VARS: dict[str, tuple[str, ...]] = {
    "deepgram": ("DEEPGRAM_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "openai_compatible": (),
    "azure_openai": ("AZURE_OPENAI_API_KEY",),
    "cartesia": ("CARTESIA_API_KEY",),
    "livekit": ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"),
    "bey": ("BEY_API_KEY",),
}
OPENAI_COMPATIBLE_KEY_VAR = "OPENAI_COMPATIBLE_API_KEY"


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


def has_credential(name: str) -> bool:
    if name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        return _livekit_credential(name) is not None
    return credential(name) is not None


def providers_in_use(
    persona: Mapping[str, Any], *, include_avatar: bool = True, text_only: bool = False
) -> list[str]:
    """The providers a persona's conversations would call, in pipeline order, each once.

    ``text_only``: those of a typed conversation (the console's ``--text``), which uses
    only the language model: no speech recognition, speech synthesis or avatar.
    """
    get = persona.get
    # A type-only persona's conversations are typed: its speech providers are never called.
    text_only = text_only or get("interaction_mode") == "text"
    providers: list[str] = []
    if get("pipeline_kind") == "realtime":
        providers.append(get("realtime_provider") or "")
        if get("realtime_use_tts") and not text_only:
            providers += [get("tts_provider") or "", get("tts_fallback_provider") or ""]
    else:
        for stage in ("llm",) if text_only else ("stt", "llm", "tts"):
            providers += [get(f"{stage}_provider") or "", get(f"{stage}_fallback_provider") or ""]
    if include_avatar and not text_only and get("avatar_provider") not in (None, "", "none"):
        providers.append(get("avatar_provider"))
    return list(dict.fromkeys(p for p in providers if p))


def required_credentials(
    persona: Mapping[str, Any], *, include_avatar: bool = True, text_only: bool = False
) -> list[str]:
    """Every variable the persona's providers read, in pipeline order, each once."""
    names: Iterable[str] = (
        name
        for provider in providers_in_use(
            persona, include_avatar=include_avatar, text_only=text_only
        )
        for name in PROVIDER_ENV_VARS.get(provider, ())
    )
    return list(dict.fromkeys(names))


def missing_credentials(
    persona: Mapping[str, Any], *, include_avatar: bool = True, text_only: bool = False
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
    return _livekit_credential("LIVEKIT_API_KEY"), _livekit_credential("LIVEKIT_API_SECRET")
