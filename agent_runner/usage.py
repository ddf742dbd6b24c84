"""The usage summary saved on each conversation, from livekit-agents' session usage.

livekit-agents 1.8 aggregates the metrics of every model call per provider/model in
``AgentSession.usage`` (``AgentSessionUsage.model_usage``: ``LLMModelUsage``,
``TTSModelUsage``, ``STTModelUsage``, …). We keep the totals people ask about (LLM
tokens, TTS characters, STT seconds) plus the per-model rows for the curious. Once the
session has closed, the job's ``SessionReport`` adds the session's duration, the visitor's
turns, the error events per component and the close reason.
"""

from __future__ import annotations

from typing import Any


def summarize_usage(model_usage: list[Any]) -> dict[str, Any]:
    """A JSON-able summary of ``AgentSession.usage.model_usage``."""
    summary: dict[str, Any] = {
        "llm_input_tokens": 0,
        "llm_cached_input_tokens": 0,
        "llm_output_tokens": 0,
        "tts_characters": 0,
        "tts_audio_seconds": 0.0,
        "stt_audio_seconds": 0.0,
        "models": [],
    }
    for usage in model_usage:
        kind = getattr(usage, "type", "")
        if kind == "llm_usage":
            summary["llm_input_tokens"] += usage.input_tokens
            summary["llm_cached_input_tokens"] += usage.input_cached_tokens
            summary["llm_output_tokens"] += usage.output_tokens
        elif kind == "tts_usage":
            summary["tts_characters"] += usage.characters_count
            summary["tts_audio_seconds"] += usage.audio_duration
        elif kind == "stt_usage":
            summary["stt_audio_seconds"] += usage.audio_duration
        row = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        summary["models"].append({k: v for k, v in row.items() if v not in (0, 0.0, "", None)})
    summary["tts_audio_seconds"] = round(summary["tts_audio_seconds"], 3)
    summary["stt_audio_seconds"] = round(summary["stt_audio_seconds"], 3)
    return summary


def summarize_session_report(report: Any) -> dict[str, Any]:
    """The usage summary from livekit-agents' ``SessionReport`` (the job's
    ``make_session_report``), which adds what the session itself recorded: how long it ran,
    the visitor's turns, each component's error events (retried ones included) and why it
    closed (livekit-agents' ``CloseReason``, e.g. ``CR_ERROR``)."""
    summary = summarize_usage(list(report.model_usage or []))
    facts = report.to_dict(include_chat_history=False, include_events=False)
    duration_ms = facts.get("duration_ms")
    summary["session_seconds"] = round(duration_ms / 1000, 3) if duration_ms is not None else None
    summary["user_turns"] = facts.get("user_turns", 0)
    summary["errors"] = {
        part: count for part, count in (facts.get("errors") or {}).items() if count
    }
    summary["close_reason"] = facts.get("close_reason")
    return summary
