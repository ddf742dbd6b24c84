import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from voice_widget.models import Persona

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_valid_personas_once():
    call_command("seed_demo", stdout=io.StringIO())
    slugs = set(Persona.objects.values_list("slug", flat=True))
    assert {"ben", "paula"} <= slugs
    assert Persona.objects.get(slug="paula").language == "de"
    # The example site's pages register show_product; Ben may call it.
    assert [tool["name"] for tool in Persona.objects.get(slug="ben").page_tools] == ["show_product"]
    for persona in Persona.objects.all():
        persona.full_clean()
    count = Persona.objects.count()
    call_command("seed_demo", stdout=io.StringIO())
    assert Persona.objects.count() == count


def test_seed_demo_leaves_editor_changes_alone():
    call_command("seed_demo", stdout=io.StringIO())
    Persona.objects.filter(slug="ben").update(greeting="Edited by an editor")
    call_command("seed_demo", stdout=io.StringIO())
    assert Persona.objects.get(slug="ben").greeting == "Edited by an editor"


def test_seed_demo_admin_prints_a_working_password():
    out = io.StringIO()
    call_command("seed_demo", admin="demo", stdout=out)
    password = out.getvalue().split("password: ")[1].split()[0]
    user = get_user_model().objects.get(username="demo")
    assert user.is_superuser and user.check_password(password)
