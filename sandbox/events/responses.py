"""EventBridge responses: moto's, with PutEvents delivered by models.put_events. Parsing and serialising only."""

from __future__ import annotations

import json

from moto.events.responses import EventsHandler

from ..core import ExtensionResponseMixin
from . import models
from .exceptions import ValidationException

MAX_ENTRIES = 10


class EventsResponse(ExtensionResponseMixin, EventsHandler):
    def put_events(self) -> str:
        entries = self._get_param("Entries") or []
        if len(entries) > MAX_ENTRIES:
            raise ValidationException(
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy "
                "constraint: Member must have length less than or equal to 10")
        results = models.put_events(self.current_account, self.region, entries)
        return json.dumps({"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results})
