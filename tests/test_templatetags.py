"""The {% voice_widget %} template tag."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory
from django.urls import reverse

from tests.factories import make_persona
from voice_widget.signing import unsign_context

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.widgets: list[dict[str, str | None]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.script_bodies: list[str] = []
        self.links: list[dict[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        if tag == "voice-widget":
            self.widgets.append(dict(attrs))
        elif tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_bodies.append(data)


def render(source: str, with_request: bool = True, **context: object) -> _Collector:
    if with_request:
        context.setdefault("request", RequestFactory().get("/bikes/linden-city/"))
    html = Template("{% load voice_widget %}" + source).render(Context(context))
    collector = _Collector()
    collector.feed(html)
    collector.html = html  # type: ignore[attr-defined]
    return collector


def test_renders_the_element_with_urls_and_the_personas_public_look():
    make_persona(
        slug="paula",
        name="Paula",
        language="de",
        theme="dark",
        accent_color="#c2410c",
        position="inline",
        button_label="Mit Paula sprechen",
        welcome_text="Fragen zum Rad?",
        preview_mode="poster",
        preview_image_url="https://cdn.example/paula.jpg",
        preview_video_url="https://cdn.example/paula-idle.mp4",
    )
    page = render('{% voice_widget "paula" %}')
    (widget,) = page.widgets
    assert widget["persona"] == "paula"
    assert widget["agent-name"] == "Paula"
    assert widget["endpoint"] == reverse("voice_widget:sessions")
    assert widget["health-endpoint"] == reverse("voice_widget:health")
    assert widget["lang"] == "de"
    assert widget["theme"] == "dark"
    assert widget["accent"] == "#c2410c"
    assert widget["position"] == "inline"
    assert widget["label"] == "Mit Paula sprechen"
    assert widget["welcome"] == "Fragen zum Rad?"
    assert widget["preview"] == "poster"
    assert widget["poster"] == "https://cdn.example/paula.jpg"
    assert widget["idle-clip"] == "https://cdn.example/paula-idle.mp4"
    assert "signed-context" not in widget


def test_csrf_token_only_for_logged_in_visitors(django_user_model):
    make_persona(slug="ben")
    anonymous = RequestFactory().get("/")
    anonymous.user = AnonymousUser()
    (widget,) = render('{% voice_widget "ben" %}', request=anonymous).widgets
    assert "csrf-token" not in widget
    assert "CSRF_COOKIE_NEEDS_UPDATE" not in anonymous.META, "no CSRF cookie for anonymous pages"

    member = RequestFactory().get("/")
    member.user = django_user_model.objects.create_user("rider")
    (widget,) = render('{% voice_widget "ben" %}', request=member).widgets
    assert len(widget["csrf-token"]) == 64  # a masked CSRF token, as {% csrf_token %} renders
    assert member.META.get("CSRF_COOKIE_NEEDS_UPDATE")


def test_empty_values_are_left_out():
    make_persona(slug="ben", button_label="", welcome_text="")
    (widget,) = render('{% voice_widget "ben" %}').widgets
    assert "label" not in widget
    assert "welcome" not in widget
    assert "poster" not in widget


def test_context_is_signed_and_verifies():
    make_persona(slug="paula")
    facts = {"product": "Linden City", "price": "1290.00", "in_stock": 7}
    (widget,) = render('{% voice_widget "paula" context=facts %}', facts=facts).widgets
    assert unsign_context(widget["signed-context"], persona="paula") == facts
    assert "context" not in widget, "server facts are signed, never sent as plain context"


def test_signed_context_cannot_be_altered():
    make_persona(slug="paula")
    (widget,) = render(
        '{% voice_widget "paula" context=facts %}', facts={"product": "Linden City"}
    ).widgets
    token = widget["signed-context"]
    tampered = ("A" if token[0] != "A" else "B") + token[1:]
    with pytest.raises(signing.BadSignature):
        unsign_context(tampered, persona="paula")


def test_voice_widget_context_collects_facts_in_the_template():
    make_persona(slug="paula")
    page = render(
        "{% voice_widget_context product=name price=price in_stock=3 as facts %}"
        '{% voice_widget "paula" context=facts %}',
        name="Linden City",
        price=1290,
    )
    (widget,) = page.widgets
    assert unsign_context(widget["signed-context"], persona="paula") == {
        "product": "Linden City",
        "price": 1290,
        "in_stock": 3,
    }


def test_position_and_preview_arguments_override_the_persona():
    make_persona(slug="ben", position="floating", preview_mode="none")
    (widget,) = render(
        '{% voice_widget "ben" position="inline" preview="none" theme="light" agent_timeout=8 %}'
    ).widgets
    assert widget["position"] == "inline"
    assert widget["theme"] == "light"
    assert widget["agent-timeout"] == "8"


def test_poster_argument_replaces_the_personas_poster():
    make_persona(slug="paula", preview_image_url="https://cdn.example/paula.png")
    (widget,) = render(
        '{% load static %}{% static "example_site/poster-paula.svg" as poster %}'
        '{% voice_widget "paula" preview="poster" poster=poster %}'
    ).widgets
    assert widget["poster"] == "/static/example_site/poster-paula.svg"
    assert widget["preview"] == "poster"


def test_poster_argument_shows_as_a_poster_preview_unless_another_is_asked_for():
    make_persona(slug="paula", preview_mode="none")
    tag = '{% voice_widget "paula" poster="/static/paula.svg" PREVIEW%}'
    (widget,) = render(tag.replace("PREVIEW", "")).widgets
    assert widget["preview"] == "poster"
    (widget,) = render(tag.replace("PREVIEW", 'preview="none"')).widgets
    assert widget["preview"] == "none"
    assert widget["poster"] == "/static/paula.svg"


def test_live_preview_needs_an_avatar(caplog):
    make_persona(slug="ben", preview_mode="none")
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        (widget,) = render('{% voice_widget "ben" preview="live" %}').widgets
    assert widget["preview"] == "none"
    assert "live preview needs an avatar" in caplog.text


def test_live_preview_with_avatar():
    make_persona(slug="ava", avatar_provider="bey", avatar_id="b9be11b8", preview_mode="live")
    (widget,) = render('{% voice_widget "ava" %}').widgets
    assert widget["preview"] == "live"


def test_bad_choice_falls_back_with_a_warning(caplog):
    make_persona(slug="ben", position="floating")
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        (widget,) = render('{% voice_widget "ben" position="sideways" %}').widgets
    assert widget["position"] == "floating"
    assert "position='sideways'" in caplog.text


def test_script_is_emitted_once_per_page():
    make_persona(slug="ben")
    make_persona(slug="paula")
    page = render('{% voice_widget "ben" %}{% voice_widget "paula" %}{% voice_widget "ben" %}')
    assert len(page.widgets) == 3
    assert len(page.scripts) == 1
    (script,) = page.scripts
    assert script["type"] == "module"
    assert script["src"].endswith("voice_widget/voice-widget.js")


def test_script_is_an_async_module_so_it_does_not_hold_up_domcontentloaded():
    # A module script without async is deferred: the page's DOMContentLoaded waits for it.
    make_persona(slug="ben")
    (script,) = render('{% voice_widget "ben" %}').scripts
    assert script["type"] == "module"
    assert "async" in script
    assert "defer" not in script


def test_script_once_per_request_across_templates():
    make_persona(slug="ben")
    request = RequestFactory().get("/")
    first = render('{% voice_widget "ben" %}', request=request)
    second = render('{% voice_widget "ben" %}', request=request)
    assert len(first.scripts) == 1
    assert len(second.scripts) == 0


def test_script_once_per_render_without_a_request():
    make_persona(slug="ben")
    page = render('{% voice_widget "ben" %}{% voice_widget "ben" %}', with_request=False)
    assert len(page.scripts) == 1
    assert "csrf-token" not in page.widgets[0]


def test_labels_in_the_personas_language_are_preloaded_once():
    make_persona(slug="paula", language="de-DE")
    make_persona(slug="ben", language="en")
    page = render('{% voice_widget "paula" %}{% voice_widget "paula" %}{% voice_widget "ben" %}')
    (link,) = page.links
    assert link["rel"] == "modulepreload"
    match = re.fullmatch(r"/static/voice_widget/(chunks/de-[\w]+\.js)", link["href"])
    assert match, link["href"]
    assert (ROOT / "voice_widget" / "static" / "voice_widget" / match.group(1)).is_file()


def test_full_page_position_from_the_tag_or_the_persona_preloads_the_layout_chunk():
    make_persona(slug="ben", position="floating", language="en")
    make_persona(slug="help", position="fullpage", language="en")
    (tagged,) = render('{% voice_widget "ben" position="fullpage" %}').widgets
    assert tagged["position"] == "fullpage"
    page = render('{% voice_widget "help" %}{% voice_widget "help" %}')
    assert [widget["position"] for widget in page.widgets] == ["fullpage", "fullpage"]
    (link,) = page.links
    assert link["rel"] == "modulepreload"
    match = re.fullmatch(r"/static/voice_widget/(chunks/layout-\w+\.js)", link["href"])
    assert match, link["href"]
    chunk = ROOT / "voice_widget" / "static" / "voice_widget" / match.group(1)
    assert "expand" in chunk.read_text()


def test_no_layout_preload_for_floating_or_inline():
    make_persona(slug="ben", position="floating", language="en")
    page = render('{% voice_widget "ben" %}{% voice_widget "ben" position="inline" %}')
    assert page.links == []


def test_no_preload_for_english_or_unknown_languages():
    make_persona(slug="ben", language="en-GB")
    make_persona(slug="kenji", language="ja")
    assert render('{% voice_widget "ben" %}{% voice_widget "kenji" %}').links == []


def test_no_inline_script():
    make_persona(slug="ben")
    page = render('{% voice_widget "ben" %}')
    assert all(script.get("src") for script in page.scripts)
    assert not "".join(page.script_bodies).strip()
    assert not re.search(r"\son[a-z]+=", page.html), "no inline event handlers either"


def test_attribute_values_are_escaped():
    make_persona(slug="ben", welcome_text='Say "hi" <b>now</b> & more')
    page = render('{% voice_widget "ben" %}')
    assert "&quot;hi&quot; &lt;b&gt;now&lt;/b&gt; &amp; more" in page.html
    assert page.widgets[0]["welcome"] == 'Say "hi" <b>now</b> & more'


def test_unknown_persona_renders_nothing_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        page = render('{% voice_widget "nobody" %}')
    assert page.html.strip() == ""
    records = [r for r in caplog.records if r.name.startswith("voice_widget")]
    assert len(records) == 1
    assert "nobody" in records[0].getMessage()


def test_inactive_persona_renders_nothing_and_warns(caplog):
    make_persona(slug="resting", is_active=False)
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        page = render('{% voice_widget "resting" %}')
    assert page.html.strip() == ""
    assert "resting" in caplog.text


def test_no_script_when_nothing_renders():
    page = render('{% voice_widget "nobody" %}')
    assert page.scripts == []


def test_urls_not_installed_renders_nothing_and_warns(settings, caplog):
    make_persona(slug="ben")
    settings.ROOT_URLCONF = "tests.urls_without_voice_widget"
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        page = render('{% voice_widget "ben" %}')
    assert page.html.strip() == ""
    assert "URLs are not installed" in caplog.text


def test_context_that_is_not_a_dict_is_ignored_with_a_warning(caplog):
    make_persona(slug="ben")
    with caplog.at_level(logging.WARNING, logger="voice_widget"):
        (widget,) = render('{% voice_widget "ben" context=facts %}', facts="oops").widgets
    assert "signed-context" not in widget
    assert "must be a dict" in caplog.text


@pytest.mark.parametrize(
    "source",
    [
        "{% voice_widget %}",
        '{% voice_widget persona="ben" %}',
        '{% voice_widget "ben" colour="red" %}',
        '{% voice_widget "ben" "extra" %}',
    ],
)
def test_template_mistakes_are_syntax_errors(source):
    with pytest.raises(TemplateSyntaxError):
        Template("{% load voice_widget %}" + source)


def test_example_pages_use_the_tag(client):
    make_persona(slug="ben", name="Ben", position="floating")
    make_persona(slug="paula", name="Paula", language="de", position="inline")
    for url, persona, position in [
        ("/", "ben", "floating"),
        ("/contact/", "ben", "floating"),
        ("/bikes/linden-city/", "paula", "inline"),
    ]:
        collector = _Collector()
        collector.feed(client.get(url).content.decode())
        assert [(w["persona"], w["position"]) for w in collector.widgets] == [(persona, position)]
        sources = [script["src"] for script in collector.scripts]
        assert len([src for src in sources if src.endswith("/voice-widget.js")]) == 1
        # The example site's own page tool (README "Page tools"), from a file: no inline script.
        assert [src for src in sources if src.endswith("/page-tools.js")] == [
            "/static/example_site/page-tools.js"
        ]
        assert not collector.script_bodies


def test_product_page_signs_the_product_facts(client):
    make_persona(slug="paula", language="de", position="inline")
    collector = _Collector()
    collector.feed(client.get("/bikes/linden-city/").content.decode())
    facts = unsign_context(collector.widgets[0]["signed-context"], persona="paula")
    assert facts["product"] == "Linden City"
    assert facts["price"] == "1290.00"


def test_works_with_manifest_static_files_storage(settings, tmp_path):
    """With hashed file names the entry's relative import of its chunks still resolves."""
    from django.core.management import call_command

    make_persona(slug="ben")
    settings.STATIC_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    (script,) = render('{% voice_widget "ben" %}').scripts
    match = re.fullmatch(r"/static/(voice_widget/voice-widget\.[0-9a-f]{12}\.js)", script["src"])
    assert match, script["src"]
    entry = (tmp_path / match.group(1)).read_text()
    chunks = re.findall(r'import\("\./(chunks/[\w.-]+\.js)"\)', entry)
    assert chunks
    for chunk in chunks:
        assert (tmp_path / "voice_widget" / chunk).is_file(), chunk


def test_talk_or_type_feedback_and_consent_are_attributes():
    persona = make_persona(
        slug="ben",
        interaction_mode="text",
        feedback_enabled=True,
        consent_text="This conversation is recorded.",
        consent_url="https://shop.example/privacy/",
    )
    (widget,) = render('{% voice_widget "ben" %}').widgets
    assert widget["mode"] == "text"
    assert widget["feedback"] == "on"
    assert widget["consent-text"] == "This conversation is recorded."
    assert widget["consent-url"] == "https://shop.example/privacy/"
    assert widget["consent-version"] == persona.consent_version
    assert widget["consent-max-age"] == str(30 * 24 * 60 * 60)


def test_no_feedback_or_consent_attributes_when_the_persona_asks_for_neither():
    make_persona(slug="ben")
    (widget,) = render('{% voice_widget "ben" %}').widgets
    assert widget["mode"] == "voice_text"
    for name in ("feedback", "consent-text", "consent-url", "consent-version", "consent-max-age"):
        assert name not in widget
