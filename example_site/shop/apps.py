from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "example_site.shop"
    label = "shop"
    verbose_name = "Example shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the shop's voice-agent tools (product lookup, opening hours).
        from . import tools  # noqa: F401
