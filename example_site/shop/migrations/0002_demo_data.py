"""The shop's catalogue and opening hours, so the example pages have something to show."""

import datetime
from decimal import Decimal

from django.db import migrations

PRODUCTS = [
    (
        "Linden City",
        "linden-city",
        "A light steel city bike with hub gears and dynamo lights.",
        "Our everyday bike: a lugged steel frame, an 8-speed hub that shifts while standing "
        "at the lights, hub dynamo lighting and mudguards that actually keep you dry. "
        "Built by hand in our workshop in Leipzig.",
        Decimal("1290.00"),
        7,
    ),
    (
        "Linden Cargo",
        "linden-cargo",
        "A long-tail cargo bike for two children or a week of shopping.",
        "The long-tail that replaces a second car: 200 kg payload, a mid-drive motor with "
        "a 90 km range and a frame that folds its footrests away when you do not need them.",
        Decimal("4490.00"),
        2,
    ),
    (
        "Linden Gravel",
        "linden-gravel",
        "A gravel bike for weekends that start where the asphalt ends.",
        "Clearance for 50 mm tyres, bosses for five bottles and bags, and a geometry that "
        "stays calm on washboard gravel and quick on the road home.",
        Decimal("2150.00"),
        0,
    ),
]

HOURS = [
    (0, None, None),
    (1, (10, 0), (18, 30)),
    (2, (10, 0), (18, 30)),
    (3, (10, 0), (20, 0)),
    (4, (10, 0), (18, 30)),
    (5, (9, 30), (15, 0)),
    (6, None, None),
]


def add_demo_data(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    OpeningHours = apps.get_model("shop", "OpeningHours")
    for name, slug, tagline, description, price, stock in PRODUCTS:
        Product.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "tagline": tagline,
                "description": description,
                "price": price,
                "in_stock": stock,
            },
        )
    for weekday, opens, closes in HOURS:
        OpeningHours.objects.update_or_create(
            weekday=weekday,
            defaults={
                "opens": datetime.time(*opens) if opens else None,
                "closes": datetime.time(*closes) if closes else None,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(add_demo_data, migrations.RunPython.noop)]
