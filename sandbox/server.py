"""The sandbox server: moto's WSGI dispatcher with the extension's routes swapped in, behind a middleware that
counts every AWS call, adds latency, injects faults and enforces the request-rate quotas (quotas.py).
``/_sandbox/*`` control endpoints bypass all of that.

Threaded: each request runs in its own thread, so added latency does not serialise concurrent callers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .errors import AwsError, protocol_of, render, throttling_error

log = logging.getLogger(__name__)

# moto backend name -> the extension package whose urls.py replaces moto's handlers for it.
EXTENSIONS = {
    "sts": "sandbox.sts.urls",
    "support": "sandbox.support.urls",
    "config": "sandbox.config.urls",
    "cloudformation": "sandbox.cloudformation.urls",
    "cloudwatch": "sandbox.cloudwatch.urls",
    "ssm": "sandbox.ssm.urls",
    "cloudtrail": "sandbox.cloudtrail.urls",
    "guardduty": "sandbox.guardduty.urls",
    "macie2": "sandbox.macie2.urls",
    "events": "sandbox.events.urls",
    "organizations": "sandbox.organizations.urls",
}

# Services whose moto apps are built in the background right after start (~0.5 s). CloudFormation is left out: its
# first call imports every moto model (~4 s of CPU), paid only by sandboxes that use StackSets.
PREWARM = ("sts", "organizations", "iam", "config", "support", "cloudwatch", "s3", "events", "ses", "cloudtrail",
           "sesv2")

# SigV4 signing name -> botocore service name, where they differ.
SIGNING_TO_SERVICE = {"monitoring": "cloudwatch", "email": "ses", "eventbridge": "events"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_COMPATIBLE: dict[str, bool] = {}
_IMPORT_LOCK = threading.Lock()
_ROUTER_LOCK = threading.Lock()
_ROUTED: set[str] = set()


@contextlib.contextmanager
def _one_boto3_session() -> Any:
    """While importing moto's CloudFormation, let argument-less ``boto3.Session()`` calls share one session.

    Importing it pulls in every moto model; moto's EC2 region list alone builds three fresh boto3 sessions (each
    re-reading botocore's endpoint data) just to list regions. Sharing one halves the ~4 s of the first
    CloudFormation call. Those sessions are only used to look up region names.
    """
    import boto3

    original = boto3.Session
    shared = original()
    boto3.Session = lambda *args, **kwargs: shared if not args and not kwargs else original(*args, **kwargs)
    try:
        yield
    finally:
        boto3.Session = original


def _patch_moto() -> None:
    """Make moto's backend lookup O(1): ``BackendDict[account]`` copies every account id into a list, under a lock
    shared by all backends, on each lookup (several per request), so requests got slower as the org grew."""
    from moto.core import responses
    from moto.core.base_backend import BackendDict

    original = BackendDict.__getitem__
    if getattr(original, "sandbox_fast", False):
        return

    def getitem(self: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:  # first use of the account: moto creates (and registers) its backend
            return original(self, account_id)

    getitem.sandbox_fast = True  # type: ignore[attr-defined]
    BackendDict.__getitem__ = getitem  # type: ignore[method-assign]
    # Every request also listed its response class's methods with inspect.getmembers; classes do not change.
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    enrich = responses.BaseResponse._enrich_response

    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        # moto scans every body with a look-behind regex for <RequestId> (XML); JSON bodies have none to replace.
        if isinstance(body, str) and "<RequestId>" not in body:
            return enrich(headers, "")[0], body
        return enrich(headers, body)

    responses.BaseResponse._enrich_response = staticmethod(enrich_response)  # type: ignore[method-assign]
    # Bucket policies with their conditions (moto ignores them; see sandbox/s3/policy.py).
    from .s3.policy import install as install_bucket_policy_conditions

    install_bucket_policy_conditions()
    # Prefix listings by bisection instead of a scan of the whole bucket (see sandbox/s3/listing.py).
    from .s3.listing import install as install_prefix_listings

    install_prefix_listings()
    # StackSets delegated administrators (moto does not know the principal; see sandbox/cloudformation/delegation.py).
    from .cloudformation.delegation import install as install_stacksets_delegation

    install_stacksets_delegation()


def _dispatcher() -> Any:
    """moto's dispatcher, remembering each host's backend: moto lists its package directory (~150 stat calls) on
    every request, under the one lock all requests take."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_app)
            self.hosts: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self.hosts:
                self.hosts[host] = super().get_backend_for_host(host)
            return self.hosts[host]

    return Dispatcher()


def create_app(service: str) -> Any:
    """moto's Flask app for ``service``, with the extension's handlers in place of moto's where we have them."""
    from moto.core.utils import convert_regex_to_flask_path, convert_to_flask_response
    from moto.moto_server.werkzeug_app import create_backend_app

    if service == "cloudformation" and "moto.cloudformation.parsing" not in sys.modules:
        with _IMPORT_LOCK, _one_boto3_session():
            importlib.import_module("moto.cloudformation.parsing")
    app = create_backend_app(service)
    module_name = EXTENSIONS.get(service)
    if module_name:
        urls = importlib.import_module(module_name)
        ours = {convert_regex_to_flask_path(path.format("")): handler for path, handler in urls.url_paths.items()}
        for rule in app.url_map.iter_rules():
            if rule.rule in ours:
                app.view_functions[rule.endpoint] = convert_to_flask_response(ours.pop(rule.rule))
        # Routes moto lacks altogether (GuardDuty and Macie findings) are added.
        for index, (path, handler) in enumerate(ours.items()):
            app.add_url_rule(path, endpoint=f"sandbox_extension_{index}", view_func=convert_to_flask_response(handler),
                             methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"], strict_slashes=False)
    return app


class RequestInfo:
    """Who calls what: account, botocore service, operation, region and wire protocol of one AWS request."""

    __slots__ = ("account", "service", "action", "region", "protocol", "access_key")

    def __init__(self, account: str, service: str, action: str, region: str, protocol: str, access_key: str):
        self.account = account
        self.service = service
        self.action = action
        self.region = region
        self.protocol = protocol
        self.access_key = access_key


class SandboxApp:
    """The WSGI application: control endpoints, then the fault/count middleware in front of moto.

    :param world: the seeded world.
    """

    def __init__(self, world: Any) -> None:
        from .control import ControlApp

        _patch_moto()
        self.world = world
        self.moto = _dispatcher()
        self.control = ControlApp(world)
        # access key -> account; emptied whenever IAM state may change (keys created or deleted, moto reset).
        self._account_cache: dict[str, str] = {}

    def prewarm(self, services: tuple[str, ...] = PREWARM) -> None:
        """Build moto's per-service apps now (CloudFormation's import takes seconds) instead of on first call."""
        for service in services:
            with self.moto.lock:
                if service in self.moto.app_instances:
                    continue
            app = create_app(service)
            with self.moto.lock:
                self.moto.app_instances.setdefault(service, app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox"):
            return self.control(environ, start_response)
        if path.startswith("/moto-api") or path == "/favicon.ico":
            self._account_cache.clear()
            return self.moto(environ, start_response)
        info = self.describe(environ)
        if info.access_key and "HTTP_X_MOTO_ACCOUNT_ID" not in environ:
            # moto would otherwise look the key up again, through every account's IAM backend.
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = info.account
        faults = self.world.faults
        if faults.current.latency_ms > 0:
            time.sleep(faults.current.latency_ms / 1000.0)
        throttled = faults.should_throttle(info.service)
        # The quota is asked only for calls the fault let through: a throttled call takes no token, as on AWS.
        over_quota = not throttled and not self.world.quotas.admit(info.account, info.region, info.service,
                                                                   info.action)
        self.world.calls.add(info.account, info.service, info.action, throttled=throttled, quota=over_quota)
        if throttled or over_quota:
            return self._error(start_response, throttling_error(info.protocol, info.service), info)
        if info.service == "s3":
            # The day's Config snapshots, inventory sync and trail files are in the bucket before anyone looks.
            self.world.deliveries.ensure(self.world.clock.today())
        if info.service == "support" and faults.support_denied(info.account):
            from .support.exceptions import SubscriptionRequiredException

            return self._error(start_response, SubscriptionRequiredException(), info)
        if info.service == "trustedadvisor":  # no moto backend: the extension answers it whole
            from .trustedadvisor.responses import app as trustedadvisor

            return trustedadvisor(environ, start_response, info.account)
        if info.service != "iam" or info.action.startswith(("Get", "List")):
            return self.moto(environ, start_response)
        self._account_cache.clear()
        try:
            return self.moto(environ, start_response)
        finally:
            self._account_cache.clear()

    # --- request identification -----------------------------------------------------------------------------
    def describe(self, environ: dict[str, Any]) -> RequestInfo:
        """Identify the account, service, action, region and protocol of an AWS request (reads, then restores, the
        body)."""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        body = _peek_body(environ)
        auth = headers.get("authorization", "")
        match = _CREDENTIAL.search(auth)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if match:
            access_key, region, signing = match.group(1), match.group(2), match.group(3)
        elif "X-Amz-Credential" in query:
            parts = query["X-Amz-Credential"][0].split("/")
            access_key, region, signing = parts[0], parts[2] if len(parts) > 2 else "us-east-1", parts[3]
        else:
            access_key, region, signing = "", "us-east-1", "unknown"
        service = SIGNING_TO_SERVICE.get(signing, signing)
        path = environ.get("PATH_INFO", "")
        if service == "ses" and path.startswith("/v2/"):
            service = "sesv2"
        protocol = protocol_of(headers, service, environ.get("REQUEST_METHOD", "GET"))
        action = ""
        target = headers.get("x-amz-target")
        if target:
            action = target.rsplit(".", 1)[-1]
        elif body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8", "replace"))
            action = form.get("Action", [""])[0]
        if not action and "Action" in query:
            action = query["Action"][0]
        if not action and path.startswith("/service/") and "/operation/" in path:
            action = path.rsplit("/operation/", 1)[-1]
        if not action:
            action = _route(service, environ, body)
        account = headers.get("x-moto-account-id") or self._account_of(access_key)
        return RequestInfo(account, service, action, region, protocol, access_key)

    def _account_of(self, access_key: str) -> str:
        if not access_key:
            return self.world.settings.management_account_id
        account = self._account_cache.get(access_key)
        if account is None:
            from moto.iam.models import get_account_id_from

            account = get_account_id_from(access_key)  # a scan of every account's IAM backend
            if len(self._account_cache) > 100_000:
                self._account_cache.clear()
            self._account_cache[access_key] = account
        return account

    def _error(self, start_response: Any, error: AwsError, info: RequestInfo) -> list[bytes]:
        status, headers, body = render(error, info.protocol, query_compatible=_query_compatible(info.service))
        headers["Content-Length"] = str(len(body))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", list(headers.items()))
        return [body]


_REASONS = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable"}


def _query_compatible(service: str) -> bool:
    if service not in _QUERY_COMPATIBLE:
        try:
            from moto.core.utils import get_service_model

            _QUERY_COMPATIBLE[service] = "awsQueryCompatible" in get_service_model(service).metadata
        except Exception:
            _QUERY_COMPATIBLE[service] = False
    return _QUERY_COMPATIBLE[service]


def _peek_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _route(service: str, environ: dict[str, Any], body: bytes) -> str:
    """Operation name of a REST request, by botocore's HTTP bindings (moto's router)."""
    try:
        from moto.core.request import Request
        from moto.core.routing import get_service_router

        copy = dict(environ)
        copy["wsgi.input"] = io.BytesIO(body)
        router = get_service_router(service)
        if service in _ROUTED:
            operation, _ = router.match(Request(copy))
        else:  # the first match builds the router (tens of ms): once, not by every thread arriving meanwhile
            with _ROUTER_LOCK:
                operation, _ = router.match(Request(copy))
            _ROUTED.add(service)
        return str(operation.name)
    except Exception:
        return f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"
    finally:
        environ["wsgi.input"] = io.BytesIO(body)


# --- process entry point ------------------------------------------------------------------------------------------
_NO_BODY = frozenset({204, 304})


def _handler() -> type:
    """moto's request handler with HTTP/1.1 keep-alive.

    werkzeug closes every connection (it cannot tell where an unread request body ends), so each AWS call cost a TCP
    connection, an accept and a new server thread. Here a request framed by Content-Length is read whole before the
    app runs, so the next request on the connection starts where it ends; anything else (chunked bodies,
    ``Expect: 100-continue``) is left to werkzeug, which closes the connection after it.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class Handler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # seconds an idle connection (and its thread) is kept
        # One send per response, without Nagle: headers and body written apart stalled each answer on a kept-alive
        # connection by the client's delayed ACK (40 ms).
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_request(self, *args: Any, **kwargs: Any) -> None:  # quiet
            return

        def run_wsgi(self) -> None:
            length = self.headers.get("Content-Length") or "0"
            if "Transfer-Encoding" in self.headers or "Expect" in self.headers or not length.isdigit():
                self.close_connection = True
                super().run_wsgi()
                return
            environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
            started: list[Any] = []
            chunks: list[bytes] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                started[:] = [status, headers]
                return chunks.append

            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception:
                log.exception("error on %s %s", self.command, self.path)
                started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")]]
                chunks[:] = [b"Internal Server Error"]
            body = b"".join(chunks)
            status, headers = started
            code, _, reason = status.partition(" ")
            bodiless = self.command == "HEAD" or int(code) < 200 or int(code) in _NO_BODY
            self.send_response(int(code), reason)
            for key, value in headers:
                # Framing is ours; a HEAD answer keeps the length of the body it would have had.
                if key.lower() not in ("connection", "transfer-encoding") and (
                        key.lower() != "content-length" or bodiless):
                    self.send_header(key, value)
            if not bodiless:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(body)

    return Handler


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def serve(settings: Any, host: str = "127.0.0.1", port: int = 5055, state_dir: Path | None = None) -> None:
    """Seed, bind, write ``<state_dir>/sandbox.json`` and serve until SIGTERM/SIGINT or ``POST /_sandbox/shutdown``.

    :param settings: SandboxSettings.
    :param host: address to bind (127.0.0.1: never exposed).
    :param port: port to bind (0: a free one, written to sandbox.json).
    :param state_dir: where sandbox.json goes (None: not written).
    """
    from werkzeug.serving import make_server

    from . import world as world_module

    os.environ.pop("MOTO_ACCOUNT_ID", None)  # would override the account of every request
    warnings.filterwarnings("ignore")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)  # "No Moto CloudFormation support for ...": supplemented
    t0 = time.perf_counter()
    world = world_module.build(settings)

    app = SandboxApp(world)
    server = make_server(host, port, app, threaded=True, request_handler=_handler())
    server.daemon_threads = True
    bound_port = server.server_address[1]
    world.endpoint = f"http://{host}:{bound_port}"
    world.timings["start_total_s"] = round(time.perf_counter() - t0, 3)
    world.shutdown = lambda: threading.Thread(target=server.shutdown, daemon=True).start()

    def on_signal(signum: int, frame: Any) -> None:
        world.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state_file = None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        state_file = state_dir / "sandbox.json"
        write_json_atomic(state_file, world.info())
    log.info("sandbox ready at %s (%d accounts)", world.endpoint, settings.accounts)
    threading.Thread(target=app.prewarm, name="prewarm", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        world.stacksets.stop()
        server.server_close()
        if state_file is not None and state_file.exists():
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass
