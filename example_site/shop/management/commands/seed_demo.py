"""Create the example personas (and optionally a demo admin); safe to run again."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from voice_widget.models import Persona

SHOP_FACTS = (
    "Linden Bikes is a small bicycle workshop at Lindenauer Markt 12 in Leipzig. It builds "
    "three bikes by hand: Linden City (1290 euro, steel city bike with hub gears), Linden "
    "Cargo (4490 euro, long-tail e-cargo bike) and Linden Gravel (2150 euro). Test rides "
    "need no appointment during opening hours."
)

DEMO_PERSONAS: list[dict[str, Any]] = [
    {
        "slug": "ben",
        "name": "Ben",
        "description": "English shop assistant; default pipeline: Deepgram, OpenAI, Cartesia.",
        "language": "en",
        "instructions": (
            "You are Ben, the friendly shop assistant of Linden Bikes. Answer questions about "
            "the bikes, test rides and opening hours in short spoken sentences (one to three "
            "sentences, no lists, no markdown). If you do not know something, say so and offer "
            "the shop's email address hello@linden-bikes.example. " + SHOP_FACTS
        ),
        "greeting": "Hi, I'm Ben from Linden Bikes. What can I help you with?",
        "stt_model": "nova-3",
        "llm_model": "gpt-4o-mini",
        "tts_model": "sonic-2",
        "tts_voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02",
        "welcome_text": "Questions about our bikes? Ask Ben.",
        "position": "floating",
        "enabled_tools": ["end_conversation"],
    },
    {
        "slug": "paula",
        "name": "Paula",
        "description": "German assistant, like the original Paula; default pipeline.",
        "language": "de",
        "instructions": (
            "Du bist Paula, die Assistentin von Linden Bikes in Leipzig. Du sprichst Deutsch, "
            "duzt niemanden ungefragt und antwortest kurz und natürlich, wie am Telefon: ein "
            "bis drei Sätze, keine Aufzählungen, kein Markdown. Wenn du etwas nicht weißt, "
            "sag es ehrlich und nenne die E-Mail-Adresse hello@linden-bikes.example. " + SHOP_FACTS
        ),
        "greeting": "Hallo, ich bin Paula von Linden Bikes. Wie kann ich Ihnen helfen?",
        "stt_model": "nova-3",
        "llm_model": "gpt-4o-mini",
        "tts_model": "sonic-2",
        "tts_voice": "b9de4a89-2257-424b-94c2-db18ba68c81a",
        "welcome_text": "Fragen zum Rad? Sprechen Sie mit Paula.",
        "position": "inline",
        "enabled_tools": ["end_conversation"],
    },
]


class Command(BaseCommand):
    help = "Create the example personas; existing ones are left as editors changed them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--admin",
            metavar="USERNAME",
            help="Also create (or reset) a superuser with a new random password, printed once.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for spec in DEMO_PERSONAS:
            fields = dict(spec)
            slug = fields.pop("slug")
            if Persona.objects.filter(slug=slug).exists():
                self.stdout.write(f"Persona {slug!r} exists; left unchanged.")
                continue
            persona = Persona(slug=slug, **fields)
            persona.full_clean()
            persona.save()
            self.stdout.write(self.style.SUCCESS(f"Created persona {slug!r}."))

        if options["admin"]:
            self._create_admin(options["admin"])

    def _create_admin(self, username: str) -> None:
        User = get_user_model()
        password = secrets.token_urlsafe(12)
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset the password of"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} admin user {username!r} with password: {password}")
        )
