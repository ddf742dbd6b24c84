"""URLs of the widget API; a host project includes them with one line:
``path("voice-widget/", include("voice_widget.urls"))``.
"""

from django.urls import path, re_path

from .api import views
from .api.schema import SchemaView

app_name = "voice_widget"

urlpatterns = [
    path("api/sessions/", views.SessionCreateView.as_view(), name="sessions"),
    path(
        "api/sessions/<uuid:conversation_id>/end/",
        views.SessionEndView.as_view(),
        name="session-end",
    ),
    path(
        "api/sessions/<uuid:conversation_id>/status/",
        views.SessionStatusView.as_view(),
        name="session-status",
    ),
    path(
        "api/sessions/<uuid:conversation_id>/feedback/",
        views.SessionFeedbackView.as_view(),
        name="session-feedback",
    ),
    path(
        "api/sessions/<uuid:conversation_id>/resume/",
        views.SessionResumeView.as_view(),
        name="session-resume",
    ),
    path("api/personas/<slug:slug>/", views.PersonaPublicView.as_view(), name="persona"),
    path("api/health/", views.HealthView.as_view(), name="health"),
    path("api/livekit/webhook/", views.LiveKitWebhookView.as_view(), name="livekit-webhook"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # Last: any other path under api/ is the API's JSON 404, not the host's HTML page.
    re_path(r"^api/", views.EndpointNotFoundView.as_view(), name="api-not-found"),
]
