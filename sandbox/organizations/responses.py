"""Organizations responses: moto's, with CreateAccount and MoveAccount also emitting the events AWS emits (models.py).
Parsing and serialising only."""

from __future__ import annotations

import json

from moto.organizations.responses import OrganizationsResponse as MotoOrganizationsResponse

from ..core import ExtensionResponseMixin
from . import models


class OrganizationsResponse(ExtensionResponseMixin, MotoOrganizationsResponse):
    def create_account(self) -> str:
        params = self.request_params
        status = models.create_account(self.organizations_backend, params)
        return json.dumps({"CreateAccountStatus": status})

    def move_account(self) -> str:
        out = super().move_account()
        models.account_moved(self.organizations_backend, self.request_params)
        return out
