"""Create the example personas (and optionally a demo admin); safe to run again."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from voice_widget.models import Persona

SHOP_FACTS_DE = (
    "Linden Bikes ist eine kleine Fahrradmanufaktur am Lindenauer Markt 12 in Leipzig. Sie "
    "baut drei Räder von Hand: Linden City (1290 Euro, Stahl-Stadtrad mit Nabenschaltung), "
    "Linden Cargo (4490 Euro, Long-Tail-Lastenrad mit Motor) und Linden Gravel (2150 Euro). "
    "Probefahrten gehen während der Öffnungszeiten ohne Termin."
)

SHOP_FACTS = (
    "Linden Bikes is a small bicycle workshop at Lindenauer Markt 12 in Leipzig. It builds "
    "three bikes by hand: Linden City (1290 euro, steel city bike with hub gears), Linden "
    "Cargo (4490 euro, long-tail e-cargo bike) and Linden Gravel (2150 euro). Test rides "
    "need no appointment during opening hours."
)

#: The example site's green (``--leaf`` in example_site/static/example_site/site.css).
SITE_ACCENT = "#2f6b4f"

#: The shop's own tools (example_site/shop/tools.py), for the shop's assistants.
SHOP_TOOLS = ["end_conversation", "opening_hours", "product_lookup"]

#: The page tool every page of the example site registers (example_site/static/example_site/
#: page-tools.js): the agent shows a bike ("show me the cargo bike").
SHOP_PAGE_TOOLS = [
    {
        "name": "show_product",
        "description": "Show one of the shop's bikes to the visitor on the website (scrolls "
        "to it or opens its page). Use it when the visitor wants to see a bike.",
        "parameters": {
            "type": "object",
            "properties": {
                "product": {
                    "type": "string",
                    "enum": ["linden-city", "linden-cargo", "linden-gravel"],
                    "description": "The bike's page name.",
                }
            },
            "required": ["product"],
        },
    }
]

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
        "enabled_tools": SHOP_TOOLS,
        "page_tools": SHOP_PAGE_TOOLS,
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
            "sag es ehrlich und nenne die E-Mail-Adresse hello@linden-bikes.example. "
            + SHOP_FACTS_DE
        ),
        "greeting": "Hallo, ich bin Paula von Linden Bikes. Wie kann ich Ihnen helfen?",
        "stt_model": "nova-3",
        "llm_model": "gpt-4o-mini",
        "tts_model": "sonic-2",
        "tts_voice": "b9de4a89-2257-424b-94c2-db18ba68c81a",
        "welcome_text": "Fragen zum Rad? Sprechen Sie mit Paula.",
        "position": "inline",
        "enabled_tools": SHOP_TOOLS,
    },
    # The five recipes of the README ("Persona recipes"): the systems this app replaces.
    {
        "slug": "nora-avatar",
        "name": "Nora",
        "description": (
            "Recipe 1, avatar assistant: Deepgram nova-3, GPT-4o, Cartesia, Beyond Presence "
            "avatar with a live preview. Needs BEY_API_KEY; without it Nora talks voice only."
        ),
        "language": "en",
        "instructions": (
            "You are Nora, the video assistant of Linden Bikes. Visitors see you on the page. "
            "Answer in short spoken sentences, warmly and precisely; no lists, no markdown. "
            + SHOP_FACTS
        ),
        "greeting": "Hi, I'm Nora from Linden Bikes. Which bike are you curious about?",
        "stt_provider": "deepgram",
        "stt_model": "nova-3",
        "stt_keyterms": "Linden City\nLinden Cargo\nLinden Gravel",
        "llm_provider": "openai",
        "llm_model": "gpt-4o",
        "llm_temperature": 0.6,
        "tts_provider": "cartesia",
        "tts_model": "sonic-2",
        "tts_voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02",
        "avatar_provider": "bey",
        "avatar_id": "b9be11b8-89fb-4227-8f86-4a881393cbdb",
        "preview_mode": "live",
        # A live preview spends avatar minutes: leave soon if nobody clicks.
        "preview_idle_seconds": 60,
        "max_duration_seconds": 300,
        "welcome_text": "Talk to Nora face to face.",
        "position": "inline",
        "enabled_tools": ["end_conversation"],
    },
    {
        "slug": "roleplay-customer",
        "name": "Mr. Keller (role-play customer)",
        "description": (
            "Recipe 2, sales training: an annoyed customer on OpenAI Realtime (gpt-realtime), "
            "tuned server VAD for a noisy shop floor, background voice cancellation (BVC, "
            "needs LiveKit Cloud)."
        ),
        "language": "en",
        "instructions": (
            "You play Mr. Keller, a customer whose Linden City bike (bought four weeks ago) "
            "has a hub gear that slips. You are annoyed but fair. The person you talk to is a "
            "trainee shop assistant practising complaint handling. Stay in role, speak "
            "naturally and briefly, raise your concern again if it is brushed aside, and "
            "calm down when you are offered a concrete solution. Never mention that this is "
            "a training."
        ),
        "greeting": "Open the conversation as Mr. Keller, walking into the shop with his bike.",
        "greeting_mode": "generate",
        "pipeline_kind": "realtime",
        "realtime_provider": "openai",
        "realtime_model": "gpt-realtime",
        "realtime_voice": "cedar",
        "realtime_turn_detection": "server_vad",
        "realtime_vad_threshold": 0.7,
        "realtime_prefix_padding_ms": 300,
        "realtime_silence_duration_ms": 600,
        "turn_detection": "realtime_llm",
        "noise_cancellation": "bvc",
        "welcome_text": "Practise a complaint conversation.",
        "button_label": "Start role-play",
        "enabled_tools": ["end_conversation"],
    },
    {
        "slug": "patient-consultant",
        "name": "Dr. Brandt (patient consultant)",
        "description": (
            "Recipe 3: a calm consultant on Azure OpenAI Realtime with very patient "
            "turn-taking (long silence before answering, interruptions need real words). "
            "Inactive until you enter your Azure endpoint and deployment and set "
            "AZURE_OPENAI_API_KEY on the worker."
        ),
        "is_active": False,
        "language": "de",
        "instructions": (
            "Du bist Dr. Brandt, eine ruhige Beraterin von Linden Bikes für Menschen, die "
            "nach einer Verletzung wieder Rad fahren möchten. Lass dir Zeit, frage nach, "
            "unterbrich nie und fasse zusammen, bevor du etwas empfiehlst. Kurze, "
            "freundliche Sätze. " + SHOP_FACTS_DE
        ),
        "greeting": (
            "Begrüße ruhig auf Deutsch, stell dich als Dr. Brandt vor und bitte darum, "
            "in Ruhe zu erzählen, worum es geht."
        ),
        # A realtime model speaks with its own voice: it greets itself, the text is the hint.
        "greeting_mode": "generate",
        "pipeline_kind": "realtime",
        "realtime_provider": "azure_openai",
        "realtime_model": "gpt-realtime",
        "azure_endpoint": "https://your-resource.openai.azure.com",
        "azure_deployment": "gpt-realtime",
        "realtime_voice": "marin",
        "realtime_turn_detection": "server_vad",
        "realtime_vad_threshold": 0.6,
        "realtime_prefix_padding_ms": 500,
        "realtime_silence_duration_ms": 1800,
        "turn_detection": "realtime_llm",
        "min_interruption_duration": 1.5,
        "false_interruption_timeout": 3.0,
        "max_duration_seconds": 1800,
        "welcome_text": "Beratung in Ruhe: sprechen Sie mit Dr. Brandt.",
        "position": "inline",
        "enabled_tools": ["end_conversation"],
    },
    {
        "slug": "local-llm",
        "name": "Otto (local model)",
        "description": (
            "Recipe 4: the language model runs on your own machine with Ollama "
            "(ollama pull llama3.1), GPT-4o-mini as fallback when it is down; the audio "
            "turn detector runs on the worker too."
        ),
        "language": "en",
        "instructions": (
            "You are Otto, the assistant of Linden Bikes. Answer in one or two short spoken "
            "sentences, no lists, no markdown. " + SHOP_FACTS
        ),
        "greeting": "Hello, I'm Otto. Ask me anything about Linden Bikes.",
        "stt_provider": "deepgram",
        "stt_model": "nova-3",
        "llm_provider": "openai_compatible",
        "llm_model": "llama3.1",
        "llm_base_url": "http://127.0.0.1:11434/v1",
        "llm_temperature": 0.4,
        "llm_fallback_provider": "openai",
        "llm_fallback_model": "gpt-4o-mini",
        "tts_provider": "cartesia",
        "tts_model": "sonic-2",
        "tts_voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02",
        "turn_detection": "audio",
        "welcome_text": "Powered by a model running on our own server.",
        "enabled_tools": ["end_conversation"],
    },
    {
        "slug": "default-pipeline",
        "name": "Lena (default pipeline)",
        "description": (
            "Recipe 5: every voice setting left at its default: Deepgram nova-3, OpenAI "
            "gpt-4o-mini, Cartesia sonic-2, LiveKit's turn-detector model."
        ),
        "language": "en",
        "instructions": (
            "You are Lena, the assistant of Linden Bikes. Answer in short spoken sentences, "
            "no lists, no markdown. " + SHOP_FACTS
        ),
        "greeting": "Hi, I'm Lena from Linden Bikes. How can I help?",
        "tts_voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02",
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
            fields.setdefault("accent_color", SITE_ACCENT)
            persona = Persona(slug=slug, **fields)
            persona.full_clean()
            # Its first version says where it came from (no user: a command made it).
            persona._change_reason = "Created by seed_demo"
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
