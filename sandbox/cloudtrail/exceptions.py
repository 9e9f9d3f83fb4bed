"""CloudTrail and AWS Config history errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError
from ..paging import InvalidNextTokenException

__all__ = ["InvalidLookupAttributesException", "InvalidMaxResultsException", "InvalidNextTokenException",
           "InvalidTimeRangeException", "ResourceNotDiscoveredException"]


class InvalidLookupAttributesException(AwsError):
    code = "InvalidLookupAttributesException"


class InvalidTimeRangeException(AwsError):
    code = "InvalidTimeRangeException"

    def __init__(self, message: str = "Start time must be before end time."):
        super().__init__(message)


class InvalidMaxResultsException(AwsError):
    code = "InvalidMaxResultsException"


class ResourceNotDiscoveredException(AwsError):
    code = "ResourceNotDiscoveredException"

    def __init__(self, resource_type: str, resource_id: str):
        super().__init__(f"Resource {resource_id} of resourceType:{resource_type} is unknown or has not been "
                         "discovered")
