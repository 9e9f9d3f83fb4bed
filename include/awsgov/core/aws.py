"""The one place that builds boto3 sessions and clients.

The admin (management) account's session comes from an Airflow connection (see ``airflow_conn.py``) or from plain
arguments; member accounts are reached by ``AssumeRole`` into the governance read role with an ExternalId.
Clients are cached per (account, region, service) and retry throttling in botocore's adaptive mode.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
from botocore.client import ClientCreator
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import ClientError
from botocore.session import Session as BotocoreSession

log = logging.getLogger(__name__)

# Error codes AWS uses for "slow down"; botocore retries them, and when retries run out we record the gap as
# throttled_out rather than error.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "InvalidClientTokenId"}
)
NO_SUPPORT_PLAN_CODES = frozenset({"SubscriptionRequiredException"})

_SESSION_NAME_BAD_CHARS = re.compile(r"[^\w+=,.@-]")


# -- client classes and service models shared between accounts --------------------------------------------------
# For every client botocore loads a new ServiceModel (whose shapes and operations are then resolved again, lazily,
# on the client's calls) and builds a new client class (one method and one lazy docstring per operation, then the
# creating-client-class handlers): about half of create_client's CPU, paid for each of the ~9 clients per account.
# Both depend only on the service's model files and on the handlers of the session's event emitter, never on
# credentials, region or endpoint (those live on the client instance), and botocore never changes a model once
# loaded. Sessions of one AwsAccess (the admin's and its member copies) share one emitter and one model loader, so
# their clients can share both. Opt-in per emitter: every other botocore session keeps botocore's behaviour.
_SHARED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str | None], Any]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
_build_client_class = ClientCreator._create_client_class
_build_service_model = ClientCreator._load_service_model


def _shared(creator: ClientCreator, key: tuple[str, str, str | None], build: Callable[[], Any]) -> Any:
    # Built outside the lock; two threads racing build two equal objects and the first one stored wins.
    shared = _SHARED.get(creator._event_emitter)
    if shared is None:
        return build()
    found = shared.get(key)
    if found is None:
        built = build()
        with _SHARED_LOCK:
            found = shared.setdefault(key, built)
    return found


def _load_service_model(self: ClientCreator, service_name: str, api_version: str | None = None) -> Any:
    """Stand-in for ``ClientCreator._load_service_model``: one model per service and api version for opted-in
    sessions (:func:`share_client_classes`).

    :param self: botocore's client creator (made by ``Session.create_client`` for each client).
    :param service_name: service, e.g. "guardduty".
    :param api_version: the requested api version; None for the latest.
    """
    return _shared(self, ("model", service_name, api_version),
                   lambda: _build_service_model(self, service_name, api_version))


def _create_client_class(self: ClientCreator, service_name: str, service_model: Any) -> type:
    """Stand-in for ``ClientCreator._create_client_class``: one class per service and api version for opted-in
    sessions (:func:`share_client_classes`).

    :param self: botocore's client creator (made by ``Session.create_client`` for each client).
    :param service_name: service, e.g. "guardduty".
    :param service_model: the loaded model of that service.
    """
    return _shared(self, ("class", service_name, service_model.api_version),
                   lambda: _build_client_class(self, service_name, service_model))


def share_client_classes(session: BotocoreSession) -> None:
    """Let clients of this botocore session and of its copies (same event emitter) share one client class and one
    service model per service.

    Installs :func:`_create_client_class` and :func:`_load_service_model` on botocore's ``ClientCreator`` once per
    process; idempotent.

    :param session: the admin account's botocore session.
    """
    with _SHARED_LOCK:
        ClientCreator._create_client_class = _create_client_class
        ClientCreator._load_service_model = _load_service_model
        _SHARED.setdefault(session.get_component("event_emitter"), {})


def error_code(exc: BaseException) -> str:
    """Return the AWS error code of a botocore ``ClientError`` ('' for anything else).

    :param exc: the exception raised by a boto3 call.
    """
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def classify_error(exc: BaseException) -> str:
    """Map an exception to a coverage status: access_denied, no_support_plan, throttled_out or error.

    :param exc: the exception raised while collecting from one account and region.
    """
    code = error_code(exc)
    if code in ACCESS_DENIED_CODES:
        return "access_denied"
    if code in NO_SUPPORT_PLAN_CODES:
        return "no_support_plan"
    if code in THROTTLING_CODES:
        return "throttled_out"
    return "error"


def role_session_name(*parts: str) -> str:
    """Build a valid STS RoleSessionName (2-64 chars of [\\w+=,.@-]) that names the DAG run.

    :param parts: e.g. ("awsgov", dag_id, run_id).
    """
    name = _SESSION_NAME_BAD_CHARS.sub("-", "-".join(p for p in parts if p))
    return (name or "awsgov")[:64].ljust(2, "-")


def retry_config(max_attempts: int = 8, extra: botocore.config.Config | None = None,
                 mode: str = "adaptive") -> botocore.config.Config:
    """Botocore config with adaptive retries (client-side rate limiting) and bounded attempts.

    :param max_attempts: total attempts per call, first one included.
    :param extra: a connection's own botocore config; its values win except for retries.
    :param mode: botocore retry mode: adaptive (backoff + client-side rate limiting) or standard (backoff only).
    """
    ours = botocore.config.Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=50,
    )
    return extra.merge(ours) if extra is not None else ours


@dataclass
class AwsAccess:
    """Sessions and clients for the admin account and, through the read role, every member account.

    :param session: boto3 session holding the admin account's credentials.
    :param region: default region for clients.
    :param endpoint_url: one endpoint for every service (a local sandbox); None for AWS.
    :param service_endpoints: per-service endpoint overrides, e.g. {"sts": "http://..."}.
    :param read_role_name: role assumed in member accounts.
    :param external_id: ExternalId required by the read role's trust policy.
    :param session_name: RoleSessionName, naming the DAG run so CloudTrail shows who read.
    :param admin_account_id: the account whose own credentials we hold; no AssumeRole into it.
    :param max_attempts: botocore retry attempts per call.
    :param retry_mode: botocore retry mode (see :func:`retry_config`).
    """

    session: boto3.Session
    region: str = "us-east-1"
    endpoint_url: str | None = None
    service_endpoints: Mapping[str, str] = field(default_factory=dict)
    read_role_name: str = "GovernanceReadRole"
    external_id: str | None = field(default=None, repr=False)  # a secret: never in a repr, a log line or XCom
    session_name: str = "awsgov"
    admin_account_id: str | None = None
    max_attempts: int = 8
    botocore_config: botocore.config.Config | None = None
    retry_mode: str = "adaptive"
    calls: Counter = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        self._config = retry_config(self.max_attempts, self.botocore_config, self.retry_mode)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str | None, str, str], Any] = {}
        self._creating: dict[tuple[str | None, str, str], threading.Lock] = {}
        self._sessions: dict[str, BotocoreSession] = {}
        self._http: dict[str, Any] = {}
        self._alias_names: dict[str, str] = {}
        self._event_aliases = getattr(self.session._session.get_component("event_emitter"), "_event_aliases", None)
        share_client_classes(self.session._session)

    @classmethod
    def from_args(
        cls,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        **kwargs: Any,
    ) -> AwsAccess:
        """Build from plain arguments (library code, scripts, tests); credentials default to boto3's chain.

        :param region: default region.
        :param endpoint_url: endpoint for every service, e.g. the local sandbox.
        """
        session = boto3.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            profile_name=profile_name,
            region_name=region,
        )
        return cls(session=session, region=region, endpoint_url=endpoint_url, **kwargs)

    # -- accounts ---------------------------------------------------------------------------------------------
    def admin_id(self) -> str:
        """Account id of the admin credentials (asked once from STS)."""
        if self.admin_account_id is None:
            self.admin_account_id = self.client("sts").get_caller_identity()["Account"]
        return self.admin_account_id

    def role_arn(self, account_id: str, role_name: str | None = None) -> str:
        """ARN of the read role (or another role) in a member account."""
        return f"arn:aws:iam::{account_id}:role/{role_name or self.read_role_name}"

    def _botocore_session(self, account_id: str | None) -> BotocoreSession:
        """The botocore session clients of an account are made from: the admin session's own, or for a member a
        copy of it holding auto-refreshing assumed-role credentials.

        The copy shares everything else with the admin session (model loader, event handlers, configuration): a
        fresh session re-registers ~200 handlers and a boto3 wrapper appends a loader search path each time, ~15 ms
        of CPU per account and a loader that grew with the number of accounts. Nothing is called until the first
        request, so a denied role surfaces on first use as AccessDenied.

        :param account_id: member account id; None or the admin id means the admin session.
        """
        if account_id is None or account_id == self.admin_account_id:
            return self.session._session
        with self._lock:
            cached = self._sessions.get(account_id)
            if cached is not None:
                return cached
        role_arn = self.role_arn(account_id)
        sts = self.client("sts")

        def refresh() -> dict[str, str]:
            kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": self.session_name}
            if self.external_id:
                kwargs["ExternalId"] = self.external_id
            creds = sts.assume_role(**kwargs)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        session = copy.copy(self.session._session)
        session._credentials = DeferredRefreshableCredentials(refresh, method="sts-assume-role")
        with self._lock:
            return self._sessions.setdefault(account_id, session)

    def forget(self, account_id: str) -> None:
        """Drop the cached session and clients of a member account (a long run over many accounts stays flat).

        :param account_id: member account whose work is done.
        """
        with self._lock:
            self._sessions.pop(account_id, None)
            for key in [k for k in self._clients if k[0] == account_id]:
                del self._clients[key]
                self._creating.pop(key, None)

    def check_access(self, account_id: str) -> str:
        """Assume the read role now and return the caller's account id (raises ClientError when denied)."""
        return self.client("sts", account_id=account_id).get_caller_identity()["Account"]

    # -- clients ----------------------------------------------------------------------------------------------
    def client(self, service: str, region: str | None = None, account_id: str | None = None) -> Any:
        """Cached boto3 client for a service in an account and region.

        :param service: boto3 service name, e.g. "support".
        :param region: region; default the access layer's region.
        :param account_id: member account to reach through the read role; None for the admin account.
        """
        region = region or self.region
        if account_id == self.admin_account_id:
            account_id = None  # the admin's own clients, whichever way it is named
        key = (account_id, region, service)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            creating = self._creating.setdefault(key, threading.Lock())
        # Created outside the shared lock (it takes milliseconds of CPU): threads wait only for the same client.
        with creating:
            client = self._clients.get(key)
            if client is None:
                client = self._botocore_session(account_id).create_client(
                    service,
                    region_name=region,
                    endpoint_url=self.service_endpoints.get(service, self.endpoint_url),
                    config=self._config,
                )
                client.meta.events.register("before-call", self._count_call)
                self._share_connections(client)
                self._share_alias_names(client)
                with self._lock:
                    self._clients[key] = client
        return client

    def _share_connections(self, client: Any) -> None:
        # Clients of one endpoint host (every account's, for a service and region) share one connection pool, so
        # connections are reused across accounts instead of each short-lived client opening its own.
        endpoint = client._endpoint
        with self._lock:
            endpoint.http_session = self._http.setdefault(endpoint.host, endpoint.http_session)

    def _share_alias_names(self, client: Any) -> None:
        # botocore gives each client's event emitter (a copy of the session's) an empty cache of event-name aliases,
        # so every short-lived client worked out again the name of each event it emitted (over 5 % of the collector's
        # GIL time in a profile of a 100-account run). The aliases are the session's for every client: one cache
        # serves all.
        # The cache only ever gains entries, each a pure function of the event name, so threads can share it.
        events = client.meta.events
        names = getattr(events, "_alias_name_cache", None)
        if isinstance(names, dict) and events._event_aliases == self._event_aliases:
            with self._lock:
                self._alias_names.update(names)
            events._alias_name_cache = self._alias_names

    def _count_call(self, model: Any, **_: Any) -> None:
        # One count per API operation (retries are not counted again): the figure benchmarks print.
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def total_calls(self) -> int:
        """API operations issued through this access layer so far."""
        return sum(self.calls.values())


def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[dict]:
    """Yield the items of ``result_key`` across all pages of a paginated operation.

    :param client: boto3 client.
    :param operation: snake_case operation name with a botocore paginator.
    :param result_key: the list field of each page.
    """
    for page in _paginator(client, operation).paginate(**kwargs):
        yield from page.get(result_key, [])


def _paginator(client: Any, operation: str) -> Any:
    # botocore builds a new documented paginator class on every get_paginator. A paginator holds only the client's
    # method and the operation's paging config (each paginate() starts a fresh page iterator), so one per client and
    # operation serves every later call, from any thread; it lives and dies with its client.
    made = vars(client).setdefault("_awsgov_paginators", {})
    found = made.get(operation)
    if found is None:
        found = made.setdefault(operation, client.get_paginator(operation))
    return found


def paginate_token(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[dict]:
    """Follow ``NextToken`` by hand for operations botocore has no paginator for.

    :param client: boto3 client.
    :param operation: snake_case operation name.
    :param result_key: the list field of each page.
    """
    call = getattr(client, operation)
    token = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(result_key, [])
        token = page.get("NextToken")
        if not token:
            return
