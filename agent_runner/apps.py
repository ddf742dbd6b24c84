from django.apps import AppConfig


class AgentRunnerConfig(AppConfig):
    name = "agent_runner"
    verbose_name = "Voice agent worker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401
