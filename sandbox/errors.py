"""AWS error responses rendered for each wire protocol, so botocore parses the code and message as from AWS.

Used by the fault middleware (throttling, no support plan) and by the extension's service responses
(per-service ``exceptions.py`` subclass :class:`AwsError`, one class per AWS error code).
"""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

# The protocols botocore speaks; the server learns a request's protocol from its headers (see protocol_of).
QUERY = "query"
JSON = "json"
REST_XML = "rest-xml"
REST_JSON = "rest-json"
CBOR = "smithy-rpc-v2-cbor"

# Services that answer in XML on REST paths (the others on REST paths speak rest-json).
REST_XML_SERVICES = frozenset({"s3", "s3control", "route53", "cloudfront"})


class AwsError(Exception):
    """An AWS error answer: code, message, HTTP status and whether the caller (Sender) is at fault.

    :param message: the human-readable message AWS would send.
    """

    code = "InternalFailure"
    status = 400
    sender = True

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def protocol_of(headers: dict[str, str], service: str, method: str) -> str:
    """Guess the wire protocol of a request from its headers (lower-case keys) and service.

    :param headers: request headers with lower-case names.
    :param service: the signing service name (``s3``, ``sts``, ``monitoring``...).
    :param method: HTTP method.
    """
    if headers.get("smithy-protocol", "").startswith("rpc-v2-cbor"):
        return CBOR
    content_type = headers.get("content-type", "")
    if headers.get("x-amz-target") or content_type.startswith("application/x-amz-json"):
        return JSON
    if content_type.startswith("application/x-www-form-urlencoded") and service not in REST_XML_SERVICES:
        return QUERY
    if service in REST_XML_SERVICES:
        return REST_XML
    return REST_JSON


def _cbor_text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _cbor_head(3, len(data)) + data


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([(major << 5) | length])
    if length < 256:
        return bytes([(major << 5) | 24, length])
    if length < 65536:
        return bytes([(major << 5) | 25]) + length.to_bytes(2, "big")
    return bytes([(major << 5) | 26]) + length.to_bytes(4, "big")


def cbor_map(mapping: dict[str, str]) -> bytes:
    """Encode a flat str->str mapping as CBOR (enough for an RPCv2 error body)."""
    out = _cbor_head(5, len(mapping))
    for key, value in mapping.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def render(error: AwsError, protocol: str, *, query_compatible: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Render ``error`` as (status, headers, body) for ``protocol``.

    :param error: the error to send.
    :param protocol: one of QUERY, JSON, REST_XML, REST_JSON, CBOR.
    :param query_compatible: add the ``x-amzn-query-error`` header (services migrated from query to JSON, such as
        CloudWatch, read the error code from it).
    """
    request_id = str(uuid.uuid4())
    fault = "Sender" if error.sender else "Receiver"
    headers = {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}
    if protocol == QUERY:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{escape(error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
        return error.status, headers, body.encode("utf-8")
    if protocol == REST_XML:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        headers["Content-Type"] = "application/xml"
        return error.status, headers, body.encode("utf-8")
    if query_compatible:
        headers["x-amzn-query-error"] = f"{error.code};{fault}"
    if protocol == CBOR:
        headers["Content-Type"] = "application/cbor"
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return error.status, headers, cbor_map({"__type": error.code, "message": error.message})
    headers["x-amzn-ErrorType"] = error.code
    headers["Content-Type"] = "application/x-amz-json-1.1" if protocol == JSON else "application/json"
    return error.status, headers, json.dumps({"__type": error.code, "message": error.message}).encode("utf-8")


def throttling_error(protocol: str, service: str) -> AwsError:
    """The throttling error a service sends over ``protocol``.

    :param protocol: wire protocol of the request.
    :param service: botocore service name.
    """
    from .quotas import throttle_error  # the per-service table (resources/quotas.json) wins over the protocol's

    return throttle_error(service, protocol)
