"""Admin pages for conversations in progress: the list, one conversation's live transcript
(its websocket is :class:`voice_widget.consumers.LiveConversationConsumer`), and ending one.

Ending is recorded here first (``staff_end``, with who did it), then the agent is told through
LiveKit (a data packet on ``voice_widget.live.CONTROL_TOPIC``): it says the persona's closing
line and leaves. When LiveKit cannot pass the packet on, the room is deleted instead, so the
conversation really stops (without a closing line) and the editor is told.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import live, rooms
from .lifecycle import OPEN_STATUSES, end_conversation
from .models import Conversation, ConversationStatus, EndReason, TurnRole
from .routing import live_socket_path

VIEW_PERMISSION = "voice_widget.view_conversation"
#: Ending a visitor's conversation is a change: editors need this permission for the button.
END_PERMISSION = "voice_widget.change_conversation"


def live_urls(admin_site: admin.AdminSite) -> list[URLPattern]:
    """URLs for ``ConversationAdmin.get_urls`` (before its own: ``live/`` is no object id)."""

    def on_site(view: Any) -> Any:
        def bound(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            return view(request, admin_site, **kwargs)

        return admin_site.admin_view(bound)

    return [
        path("live/", on_site(live_list), name="voice_widget_conversation_live"),
        path(
            "<uuid:conversation_id>/live/",
            on_site(live_detail),
            name="voice_widget_conversation_live_detail",
        ),
        path(
            "<uuid:conversation_id>/live/end/",
            on_site(require_POST(live_end)),
            name="voice_widget_conversation_live_end",
        ),
    ]


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _context(
    request: HttpRequest, admin_site: admin.AdminSite, title: str, **extra: Any
) -> dict[str, Any]:
    return {
        **admin_site.each_context(request),
        "title": title,
        "opts": Conversation._meta,
        **extra,
    }


def live_list(request: HttpRequest, admin_site: admin.AdminSite) -> HttpResponse:
    """Conversations in progress, newest first."""
    _require(request, VIEW_PERMISSION)
    conversations = (
        Conversation.objects.filter(status__in=OPEN_STATUSES)
        .select_related("persona", "user")
        .annotate(lines=Count("turns"))
        .order_by("-created_at")
    )
    return render(
        request,
        "admin/voice_widget/conversation/live_list.html",
        _context(
            request,
            admin_site,
            _("Live conversations"),
            conversations=conversations,
            mode=live.layer_mode(),
        ),
    )


def live_detail(
    request: HttpRequest, admin_site: admin.AdminSite, conversation_id: Any
) -> HttpResponse:
    """One conversation's transcript so far; the page's script adds lines as they are said."""
    _require(request, VIEW_PERMISSION)
    conversation = (
        Conversation.objects.select_related("persona", "user").filter(pk=conversation_id).first()
    )
    if conversation is None:
        raise Http404(_("No such conversation."))
    turns = list(conversation.turns.order_by("sequence"))
    return render(
        request,
        "admin/voice_widget/conversation/live_detail.html",
        _context(
            request,
            admin_site,
            _("Live: %(persona)s") % {"persona": conversation.persona.name},
            conversation=conversation,
            turns=turns,
            socket_path=live_socket_path(conversation.pk),
            mode=live.layer_mode(),
            can_end=conversation.is_open and request.user.has_perm(END_PERMISSION),
            role_labels=json.dumps({str(k): str(v) for k, v in TurnRole.choices}),
            status_labels=json.dumps({str(k): str(v) for k, v in ConversationStatus.choices}),
        ),
    )


def live_end(
    request: HttpRequest, admin_site: admin.AdminSite, conversation_id: Any
) -> HttpResponse:
    """End the conversation (``staff_end``); the agent says its closing line and leaves."""
    _require(request, END_PERMISSION)
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise Http404(_("No such conversation."))
    back = HttpResponseRedirect(
        reverse("admin:voice_widget_conversation_live_detail", args=[conversation.pk])
    )
    problem = end_from_live_page(conversation, request.user.get_username())
    if problem == ALREADY_ENDED:
        messages.warning(request, _("This conversation had already ended."))
    elif problem:
        messages.warning(
            request,
            _(
                "The conversation is ended, but LiveKit could not tell the agent (%(problem)s):"
                " its room was closed instead, without a closing line."
            )
            % {"problem": problem},
        )
    else:
        messages.success(
            request, _("The conversation is ended; the agent is saying its closing line.")
        )
    return back


#: ``end_from_live_page``'s answer when another ending was recorded first.
ALREADY_ENDED = "already ended"


def end_from_live_page(conversation: Conversation, username: str) -> str | None:
    """Record ``staff_end`` and tell the agent; None when both worked, ``ALREADY_ENDED``, or
    what kept LiveKit from passing the packet on (then the room is deleted instead)."""
    ended = end_conversation(
        conversation.pk,
        EndReason.STAFF_END,
        detail=f"Ended from the live page by {username}.",
    )
    if not ended:
        return ALREADY_ENDED
    problem = rooms.send_data(
        conversation.room_name, live.end_control(conversation.pk), topic=live.CONTROL_TOPIC
    )
    if problem:
        rooms.delete_room_in_background(conversation.room_name)
    return problem
