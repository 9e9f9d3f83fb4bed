"""Glue shared by the extension's service packages: the running world and error rendering in responses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AwsError, protocol_of, render

if TYPE_CHECKING:
    from .world import World

_WORLD: World | None = None


def install(world: World | None) -> None:
    """Make ``world`` the one the extension's responses answer from (one world per server process)."""
    global _WORLD
    _WORLD = world


def world() -> World:
    """The running world; raises if the server has not installed one."""
    if _WORLD is None:
        raise RuntimeError("no sandbox world installed (sandbox.core.install)")
    return _WORLD


class ExtensionResponseMixin:
    """Mixed into moto response classes: renders :class:`AwsError` raised by extension methods in the request's
    protocol (moto's own ServiceException handling stays as it is)."""

    headers: Any
    service_name: str | None

    def call_action(self) -> Any:
        try:
            return super().call_action()  # type: ignore[misc]
        except AwsError as error:
            headers = {k.lower(): v for k, v in self.headers.items()}
            protocol = protocol_of(headers, self.service_name or "", getattr(self, "method", "POST"))
            status, out_headers, body = render(error, protocol)
            out_headers["status"] = str(status)
            return status, out_headers, body.decode("utf-8")
