"""The example site's URLs, with the session endpoint throttled by DRF's ``AnonRateThrottle``:
the reference for benchmarks/bench_burst.py's throttle run."""

from django.urls import path
from rest_framework.throttling import AnonRateThrottle

from example_site.urls import urlpatterns as example_urlpatterns
from voice_widget.api.views import SessionCreateView
from voice_widget.conf import vw_settings


class DrfAnonRateThrottle(AnonRateThrottle):
    scope = "voice_widget_drf_reference"

    def get_rate(self) -> str | None:
        return (vw_settings.THROTTLE_RATES or {}).get("anon")


class DrfThrottledSessionView(SessionCreateView):
    throttle_classes = [DrfAnonRateThrottle]


urlpatterns = [
    path("voice-widget/api/sessions/", DrfThrottledSessionView.as_view()),
    *example_urlpatterns,
]
