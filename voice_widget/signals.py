"""Signals host projects can connect to."""

from django.dispatch import Signal

#: Sent once per conversation, when it first ends, by whichever side ends it (the web
#: process for a visitor's end request, the worker otherwise). Arguments:
#: ``sender`` (the Conversation class), ``conversation``, ``reason`` (an EndReason value).
#: Receivers run in the process that ended it; the worker calls them from a thread,
#: so ORM use is fine. Usage figures may arrive slightly later than the signal when the
#: visitor ended the conversation from the browser.
conversation_ended = Signal()
