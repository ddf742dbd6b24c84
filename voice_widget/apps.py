from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VoiceWidgetConfig(AppConfig):
    name = "voice_widget"
    verbose_name = _("Voice widget")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the settings-cache receiver and the CORS receiver
        # for the widget API; reads no settings.
        from . import checks, conf  # noqa: F401
        from .api import origins  # noqa: F401
