"""What the agent tells the visitor when its providers fail, in the persona's language.

The same languages as the widget's built-in labels (``static/widget/src/labels``): English,
German, Spanish, Portuguese, Russian and French; other languages get English, as the
widget's labels do. This module imports nothing from LiveKit.
"""

from __future__ import annotations

#: Said (or shown as a caption when speech synthesis is what fails) after a failed turn.
PROBLEM = {
    "en": "Sorry, I have a technical problem right now. Please say that again in a moment.",
    "de": "Entschuldigung, ich habe gerade ein technisches Problem. Bitte sagen Sie das "
    "gleich noch einmal.",
    "es": "Lo siento, ahora mismo tengo un problema técnico. Por favor, repítalo en un momento.",
    "pt": "Desculpe, estou com um problema técnico agora. Por favor, repita daqui a pouco.",
    "ru": "Извините, у меня сейчас техническая проблема. Пожалуйста, повторите чуть позже.",
    "fr": "Désolé, j'ai un problème technique en ce moment. Veuillez répéter dans un instant.",
}

#: The last line when the providers stay down and the conversation ends with ``error``.
GIVING_UP = {
    "en": "Sorry, because of a technical problem I cannot continue this conversation. "
    "Please try again later.",
    "de": "Entschuldigung, wegen eines technischen Problems kann ich dieses Gespräch nicht "
    "fortsetzen. Bitte versuchen Sie es später noch einmal.",
    "es": "Lo siento, por un problema técnico no puedo continuar esta conversación. "
    "Por favor, inténtelo más tarde.",
    "pt": "Desculpe, devido a um problema técnico não consigo continuar esta conversa. "
    "Por favor, tente novamente mais tarde.",
    "ru": "Извините, из-за технической проблемы я не могу продолжить разговор. "
    "Пожалуйста, попробуйте позже.",
    "fr": "Désolé, à cause d'un problème technique je ne peux pas poursuivre cette "
    "conversation. Veuillez réessayer plus tard.",
}


def in_language(texts: dict[str, str], language: str | None) -> str:
    """The text for a BCP-47 ``language`` (by its base tag), English when there is none."""
    base = (language or "en").split("-")[0].lower()
    return texts.get(base, texts["en"])
