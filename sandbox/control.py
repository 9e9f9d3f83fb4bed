"""Control endpoints under ``/_sandbox/`` (never faulted, delayed or counted).

    GET    /_sandbox/health                 {"status": "ok", "pid": ...}
    GET    /_sandbox/info                   the content of sandbox.json
    GET    /_sandbox/faults                 current faults
    POST   /_sandbox/faults                 replace faults (JSON object, see faults.Faults); PATCH merges
    DELETE /_sandbox/faults                 clear faults
    GET    /_sandbox/calls                  {"total", "throttled", "calls": [{account, service, action, count}]}
    POST   /_sandbox/calls/reset            zero the counter (DELETE /_sandbox/calls too)
    GET    /_sandbox/date                   {"date": "YYYY-MM-DD", "fixed": bool}
    POST   /_sandbox/date                   {"date": "YYYY-MM-DD"} (null: back to the real UTC date)
    GET    /_sandbox/quotas                 the request-rate quota model: enabled, scale, rates and sources (quotas.py),
                                            and throttled_calls: calls refused by a quota since the calls reset
    POST   /_sandbox/quotas                 {"scale": 0.5} and/or {"enabled": false}; every bucket starts full again
    GET    /_sandbox/quotas/buckets         {"admitted", "throttled", "buckets": [{account, region, service, operation,
                                            admitted, throttled}]}: each bucket's calls since it was refilled
    DELETE /_sandbox/quotas/buckets         refill every bucket (and zero its counts)
    GET    /_sandbox/deliveries             {date: {"objects": {kind: count}, "seconds"}} of the days delivered
    POST   /_sandbox/deliveries             {"date": "YYYY-MM-DD"} (default: the sandbox date): deliver that day's
                                            Config snapshots, SSM inventory sync and CloudTrail files (delivery.py)
    GET    /_sandbox/truth?date=&account=&sections=   what the extension answers for that date (see truth.py)
    POST   /_sandbox/shutdown               stop the server cleanly
"""

from __future__ import annotations

import json
import os
from typing import Any

from werkzeug.wrappers import Request, Response

from .clock import parse_date
from .faults import FaultsError


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, default=str), status=status, mimetype="application/json")


class ControlApp:
    """WSGI app for the control endpoints.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except (FaultsError, ValueError, KeyError, TypeError) as exc:
            response = _json({"error": str(exc)}, 400)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        w = self.world
        path = request.path.rstrip("/")
        method = request.method
        if path == "/_sandbox/health":
            return _json({"status": "ok", "pid": os.getpid(), "endpoint": w.endpoint, "date": str(w.clock.today())})
        if path == "/_sandbox/info":
            return _json(w.info())
        if path == "/_sandbox/faults":
            if method == "GET":
                return _json(w.faults.current.to_dict())
            if method == "DELETE":
                return _json(w.faults.clear().to_dict())
            if method in ("POST", "PUT", "PATCH"):
                data = request.get_json(force=True, silent=False) or {}
                return _json(w.faults.set(data, merge=method == "PATCH").to_dict())
        if path == "/_sandbox/calls":
            if method == "GET":
                return _json(w.calls.snapshot())
            if method == "DELETE":
                w.calls.reset()
                return _json(w.calls.snapshot())
        if path == "/_sandbox/calls/reset" and method == "POST":
            w.calls.reset()
            return _json(w.calls.snapshot())
        if path == "/_sandbox/quotas":
            if method == "GET":
                return _json({**w.quotas.describe(), "throttled_calls": w.calls.quota_throttled()})
            if method in ("POST", "PUT", "PATCH"):
                data = request.get_json(force=True, silent=False) or {}
                unknown = sorted(set(data) - {"scale", "enabled"})
                if unknown:
                    raise ValueError(f"unknown quota fields: {', '.join(unknown)} (known: enabled, scale)")
                return _json(w.quotas.configure(scale=data.get("scale"), enabled=data.get("enabled")))
        if path == "/_sandbox/quotas/buckets":
            if method == "GET":
                buckets = w.quotas.buckets()
                return _json({"admitted": sum(b["admitted"] for b in buckets),
                              "throttled": sum(b["throttled"] for b in buckets), "buckets": buckets})
            if method == "DELETE":
                w.quotas.refill()
                return _json({"refilled": True})
        if path == "/_sandbox/deliveries":
            if method == "GET":
                return _json(w.deliveries.summary())
            if method == "POST":
                data = request.get_json(force=True, silent=True) or {}
                day = parse_date(data["date"]) if data.get("date") else w.clock.today()
                return _json({day.isoformat(): w.deliveries.ensure(day)})
        if path == "/_sandbox/date":
            if method in ("POST", "PUT"):
                data = request.get_json(force=True, silent=False) or {}
                value = data.get("date")
                w.clock.set(parse_date(value) if value else None)
            elif method == "DELETE":
                w.clock.set(None)
            return _json({"date": w.clock.today().isoformat(), "fixed": w.clock.fixed})
        if path == "/_sandbox/truth":
            from .truth import build_truth

            date = parse_date(request.args["date"]) if request.args.get("date") else w.clock.today()
            sections = [s for s in request.args.get("sections", "").split(",") if s] or None
            accounts = [a for a in request.args.get("account", "").split(",") if a] or None
            return _json(build_truth(w, date, sections=sections, accounts=accounts))
        if path == "/_sandbox/shutdown" and method == "POST":
            shutdown = getattr(w, "shutdown", None)
            if shutdown:
                shutdown()
            return _json({"status": "stopping"})
        return _json({"error": f"no control endpoint {method} {request.path}"}, 404)
