"""Macie responses: moto's (sessions, invitations, admin account) plus findings, ListMembers and GetMember.
Parsing and serialising only; answers come from models.MacieModel."""

from __future__ import annotations

import json

from moto.macie2.responses import MacieResponse as MotoMacieResponse

from ..core import ExtensionResponseMixin, world
from ..paging import checked_limit
from .exceptions import ConflictException, ValidationException


class MacieResponse(ExtensionResponseMixin, MotoMacieResponse):
    @property
    def model(self):
        return world().macie

    def enable_macie(self) -> str:
        # One Macie session per account and region: AWS refuses a second EnableMacie (moto would overwrite).
        if self.model.has_session(self.current_account, self.region):
            raise ConflictException("The request failed because Macie is already enabled for this account.")
        return super().enable_macie()

    def get_macie_session(self) -> str:
        self.model.require_enabled(self.current_account, self.region)
        return super().get_macie_session()

    def list_findings(self) -> str:
        self.model.require_enabled(self.current_account, self.region)
        criteria = self._get_param("findingCriteria") or {}
        limit = checked_limit(self._get_param("maxResults"), 50, 50, ValidationException)
        ids, token = self.model.list_ids(self.current_account, self.region, world().clock.today(),
                                         criteria.get("criterion"), limit, self._get_param("nextToken"))
        return json.dumps({"findingIds": ids, **({"nextToken": token} if token else {})})

    def get_findings(self) -> str:
        self.model.require_enabled(self.current_account, self.region)
        ids = self._get_param("findingIds") or []
        if len(ids) > 50:
            raise ValidationException("findingIds must contain at most 50 items.")
        return json.dumps({"findings": self.model.get(self.current_account, self.region, world().clock.today(), ids)})

    def list_members(self) -> str:
        # moto answers from its invitations only, naming none of the seeded members.
        self.model.require_enabled(self.current_account, self.region)
        limit = checked_limit(self._get_param("maxResults"), 25, 25, ValidationException)
        only = str(self._get_param("onlyAssociated") or "true").lower() != "false"
        members, token = self.model.member_list(self.current_account, self.region, only, limit,
                                                self._get_param("nextToken"))
        return json.dumps({"members": members, **({"nextToken": token} if token else {})})

    def get_member(self) -> str:
        self.model.require_enabled(self.current_account, self.region)
        member_id = self.path.rstrip("/").rsplit("/", 1)[-1]
        return json.dumps(self.model.member(self.current_account, self.region, member_id))
