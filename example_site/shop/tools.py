"""The example shop's own tools for the voice agent, reading the shop's database.

Registered with ``voice_widget.tools.register_tool`` when the app is ready; a persona
offers them to its agent once an editor ticks them under "Tools" in admin.
"""

from __future__ import annotations

from django.db.models import Q

from voice_widget.tools import register_tool

from .models import OpeningHours, Product

WEEKDAYS = [label.lower() for label in OpeningHours.Weekday.labels]


@register_tool(
    description=(
        "Look up the shop's bikes by name or words from their description: price, "
        "whether they are in stock, and a short description."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "A bike name or what the visitor is looking for, e.g. 'cargo'.",
            }
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
def product_lookup(query: str) -> dict:
    """Bikes matching ``query`` (at most five), from the shop's catalogue."""
    words = [word for word in (query or "").split() if len(word) > 1][:5]
    matches = Product.objects.all()
    for word in words:
        matches = matches.filter(
            Q(name__icontains=word) | Q(tagline__icontains=word) | Q(description__icontains=word)
        )
    products = [
        {
            "name": product.name,
            "price_eur": str(product.price),
            "in_stock": product.in_stock,
            "summary": product.tagline,
        }
        for product in matches[:5]
    ]
    if not products:
        return {"products": [], "note": "No bike matches; offer the whole range instead."}
    return {"products": products}


@register_tool(
    description="The shop's opening hours, for one weekday or the whole week.",
    parameters={
        "type": "object",
        "properties": {
            "weekday": {
                "type": "string",
                "description": "A weekday in English (e.g. 'saturday'); leave out for the week.",
                "enum": WEEKDAYS,
            }
        },
        "additionalProperties": False,
    },
)
def opening_hours(weekday: str | None = None) -> str:
    """Opening hours from the shop's ``OpeningHours`` table."""
    rows = OpeningHours.objects.all()
    if weekday:
        if weekday.lower() not in WEEKDAYS:
            return f"Unknown weekday {weekday!r}."
        rows = rows.filter(weekday=WEEKDAYS.index(weekday.lower()))
    lines = [str(row) for row in rows]
    return "; ".join(lines) if lines else "The opening hours are not published yet."
