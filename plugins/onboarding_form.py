"""Plain-words refusals for the account_onboarding trigger form (an Airflow 3 ``fastapi_root_middlewares`` plugin).

Airflow checks a trigger's conf against the DAG's Params and refuses it (HTTP 400) with the raw text of the first
jsonschema error only ("Failed validating 'pattern' in schema['items']"), which the UI shows at the top of the
trigger dialog. This middleware answers the same 400 with every problem of every field, each in plain words from
the form's own schema (include/awsgov/onboarding/form.py ``explain``). Requests it does not recognise, and successful
triggers, pass through untouched.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

# POST /api/v2/dags/account_onboarding/dagRuns: the UI's trigger dialog and the REST API.
TRIGGER_PATH = re.compile(r"/api/v2/dags/account_onboarding/dagRuns/?\Z")
REFUSAL_PREFIX = "Invalid input for param"


def plain_detail(conf: Any) -> str | None:
    """The refusal text for ``conf``: one line per problem, or None when the form's schema finds none.

    :param conf: the trigger body's ``conf``.
    """
    from include.awsgov.onboarding.form import explain

    problems = explain(conf if isinstance(conf, dict) else {})
    if not problems:
        return None
    count = f"{len(problems)} fields need" if len(problems) > 1 else "1 field needs"
    return f"{count} fixing:\n" + "\n".join(f"- {problem}" for problem in problems)


class PlainParamErrors:
    """ASGI middleware: rewrites the 400 of a refused account_onboarding trigger into :func:`plain_detail`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or not TRIGGER_PATH.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: dict = {}
        held: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                if message["status"] != 400:
                    await send(message)
                return
            if start.get("status") != 400:
                await send(message)
                return
            held.append(message.get("body", b""))
            if not message.get("more_body", False):
                await send_refusal(b"".join(held))

        async def send_refusal(original: bytes) -> None:
            new = rewrite(body, original)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(new)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": new, "more_body": False})

        await self.app(scope, replay, capture)


def rewrite(request_body: bytes, response_body: bytes) -> bytes:
    """The 400's new body, or the original when it is not a Params refusal or the conf cannot be read.

    :param request_body: the trigger request (JSON with ``conf``).
    :param response_body: Airflow's 400 (JSON with ``detail``).
    """
    try:
        detail = json.loads(response_body).get("detail")
        if not isinstance(detail, str) or not detail.startswith(REFUSAL_PREFIX):
            return response_body
        text = plain_detail(json.loads(request_body or b"{}").get("conf") or {})
    except (ValueError, AttributeError) as exc:
        log.warning("onboarding_form: left a refusal as it was (%s)", type(exc).__name__)
        return response_body
    return response_body if text is None else json.dumps({"detail": text}).encode()


class OnboardingFormPlugin(AirflowPlugin):
    """Registers :class:`PlainParamErrors` on the api-server."""

    name = "onboarding_form"
    fastapi_root_middlewares = [{"middleware": PlainParamErrors, "args": [], "kwargs": {},
                                 "name": "Plain-words refusals of the account_onboarding trigger form"}]
