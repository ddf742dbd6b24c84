"""A host project's URLconf with its own DRF view beside the widget API (schema tests)."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView


class HostOrdersView(APIView):
    def get(self, request):
        return Response([])


urlpatterns = [
    path("shop-api/orders/", HostOrdersView.as_view()),
    path("talk/", include("voice_widget.urls")),
]
