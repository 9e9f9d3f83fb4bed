"""NextToken pagination as AWS does it: opaque tokens bound to the query, refused when tampered with or reused
for another query (InvalidNextTokenException)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from .errors import AwsError

T = TypeVar("T")


class InvalidNextTokenException(AwsError):
    code = "InvalidNextTokenException"

    def __init__(self, message: str = "The nextToken provided is invalid"):
        super().__init__(message)


class InvalidLimitException(AwsError):
    code = "InvalidLimitException"


def _fingerprint(query: Any) -> str:
    return hashlib.blake2b(json.dumps(query, sort_keys=True, default=str).encode(), digest_size=6).hexdigest()


def page(items: Sequence[T], next_token: str | None, limit: int, query: Any) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next (None at the end).

    :param items: the full, stably ordered result.
    :param next_token: the request's NextToken (None for the first page).
    :param limit: page size.
    :param query: the request's filters; a token only continues the query it was issued for.
    """
    start = 0
    if next_token:
        try:
            data = json.loads(base64.urlsafe_b64decode(next_token.encode()).decode())
            start, fingerprint = int(data["o"]), data["q"]
        except (ValueError, KeyError, TypeError):
            raise InvalidNextTokenException() from None
        if fingerprint != _fingerprint(query) or not 0 <= start <= len(items):
            raise InvalidNextTokenException()
    end = start + limit
    token = None
    if end < len(items):
        token = base64.urlsafe_b64encode(json.dumps({"o": end, "q": _fingerprint(query)}).encode()).decode()
    return list(items[start:end]), token


def checked_limit(limit: Any, default: int, maximum: int, error: type[AwsError] = InvalidLimitException) -> int:
    """The page size of a request: ``default`` for None or 0, refused above ``maximum`` or below 0."""
    if limit is None or int(limit) == 0:
        return default
    limit = int(limit)
    if limit < 0 or limit > maximum:
        raise error(f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or "
                    f"equal to {maximum}")
    return limit
