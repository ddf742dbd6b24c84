"""The example site as a newcomer meets it: shop prices, Paula's corner, the demo personas."""

import importlib
import io
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command

from voice_widget.models import Persona

pytestmark = pytest.mark.django_db

SITE_CSS = Path(__file__).resolve().parents[1] / "example_site/static/example_site/site.css"


@pytest.fixture
def shop(settings):
    settings.ROOT_URLCONF = "example_site.urls"
    demo_data = importlib.import_module("example_site.shop.migrations.0002_demo_data")
    demo_data.add_demo_data(apps, None)
    call_command("seed_demo", stdout=io.StringIO())


def test_prices_read_like_a_shops(client, shop):
    html = client.get("/").content.decode()
    assert "€4,490<" in html and "€1,290<" in html
    assert ".00" not in html
    assert "€1,290<" in client.get("/bikes/linden-city/").content.decode()


def test_paulas_corner_of_the_product_page_speaks_her_language(client, shop):
    html = client.get("/bikes/linden-city/").content.decode()
    aside = re.search(r'<aside class="product-assistant" lang="de"[^>]*>(.*?)</aside>', html, re.S)
    assert aside, "the aside around the German widget is marked German"
    assert "<h2>Fragen zum Linden City?</h2>" in aside.group(1)
    assert 'poster="/static/example_site/poster-paula.svg"' in aside.group(1)
    assert 'preview="poster"' in aside.group(1)


def test_demo_personas_wear_the_sites_green_and_use_the_shops_tools(shop):
    leaf = re.search(r"--leaf:\s*(#[0-9a-f]{6})", SITE_CSS.read_text()).group(1)
    for persona in Persona.objects.filter(slug__in=["ben", "paula"]):
        assert persona.accent_color == leaf
        assert {"opening_hours", "product_lookup"} <= set(persona.enabled_tools)


def test_help_page_is_ben_full_page_linked_from_the_nav(client, shop):
    home = client.get("/").content.decode()
    assert re.search(r'<nav aria-label="Main">.*<a href="/help/"[^>]*>Ask Ben</a>', home, re.S)
    html = client.get("/help/").content.decode()
    widgets = re.findall(r"<voice-widget [^>]*>", html)
    assert len(widgets) == 1, "no floating launcher on top of the full-page Ben"
    assert 'persona="ben"' in widgets[0] and 'position="fullpage"' in widgets[0]
    assert '<a href="/help/" aria-current="page">Ask Ben</a>' in html
    assert re.search(r'<link rel="modulepreload" href="/static/voice_widget/chunks/layout-', html)
