"""The example site's URLs plus the references of benchmarks/bench_session_floor.py: a
"database floor" view (one primary-key lookup, one INSERT of a conversation) and a trivial
JSON view, both reading the same kind of JSON body as the session endpoint."""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from example_site.urls import urlpatterns as site_urlpatterns
from voice_widget.models import Conversation, Persona
from voice_widget.tokens import new_identity, new_room_name


@csrf_exempt
def database_floor(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    persona = Persona.objects.only("id").get(pk=data["persona_pk"])
    conversation = Conversation.objects.create(
        persona=persona, room_name=new_room_name(), identity=new_identity()
    )
    return JsonResponse({"conversation": str(conversation.pk)}, status=201)


@csrf_exempt
def trivial(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    return JsonResponse({"persona": data.get("persona")}, status=201)


urlpatterns = [
    path("bench/floor/", database_floor),
    path("bench/trivial/", trivial),
    *site_urlpatterns,
]
