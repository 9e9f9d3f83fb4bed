"""GuardDuty responses: moto's (detectors, filters, admin account) plus findings and members.
Parsing and serialising only; answers come from models.GuardDutyModel."""

from __future__ import annotations

import json

from moto.guardduty.responses import GuardDutyResponse as MotoGuardDutyResponse

from ..core import ExtensionResponseMixin, world
from ..paging import checked_limit, page
from .exceptions import BadRequestException
from .models import NOT_ASSOCIATED


class GuardDutyResponse(ExtensionResponseMixin, MotoGuardDutyResponse):
    @property
    def model(self):
        return world().guardduty

    def _detector(self) -> str:
        detector_id = self.path.split("/detector/", 1)[1].split("/", 1)[0]
        self.model.check_detector(self.current_account, self.region, detector_id)
        return detector_id

    def create_detector(self) -> str:
        # AWS allows one detector per account and region (moto would add a second).
        if self.model.has_detector(self.current_account, self.region):
            raise BadRequestException("The request is rejected because a detector already exists for the current "
                                      "account.")
        return super().create_detector()

    def list_findings(self) -> str:
        self._detector()
        criteria = self._get_param("findingCriteria") or {}
        limit = checked_limit(self._get_param("maxResults"), 50, 50, BadRequestException)
        ids, token = self.model.list_ids(self.current_account, self.region, world().clock.today(),
                                         criteria.get("criterion"), limit, self._get_param("nextToken"))
        return json.dumps({"findingIds": ids, **({"nextToken": token} if token else {})})

    def get_findings(self) -> str:
        self._detector()
        ids = self._get_param("findingIds") or []
        if len(ids) > 50:
            raise BadRequestException("The request is rejected because findingIds has more than 50 items.")
        found = self.model.get(self.current_account, self.region, world().clock.today(), ids)
        return json.dumps({"findings": found})

    def get_members(self) -> str:
        self._detector()
        members, unprocessed = self.model.members_of(self.current_account, self.region,
                                                     self._get_param("accountIds") or [])
        return json.dumps({"members": members, "unprocessedAccounts": unprocessed})

    def list_members(self) -> str:
        # AWS pages ListMembers (MaxResults 1-50, default 50: botocore guardduty model and API Reference) and by
        # default lists only associated members: "OnlyAssociated: Specifies whether to only return associated members
        # or to return all members (including members who haven't been invited yet or have been disassociated)".
        self._detector()
        limit = checked_limit(self._get_param("maxResults"), 50, 50, BadRequestException)
        only = str(self._get_param("onlyAssociated") or "true").lower() != "false"
        members, _ = self.model.members_of(self.current_account, self.region, None)
        if only:
            members = [m for m in members if m["relationshipStatus"] not in NOT_ASSOCIATED]
        found, token = page(members, self._get_param("nextToken"), limit,
                            ["guardduty-members", self.current_account, self.region, only])
        return json.dumps({"members": found, **({"nextToken": token} if token else {})})
