"""The errors the clients raise: eric's own, typed by its error code."""

from __future__ import annotations

import json

import httpx


class EricError(Exception):
    """The server refused a request.

    ``code`` is eric's error code (``channel_not_found``, ``invalid_topic``,
    ``too_many_subscriptions``, ``unauthorized``, ...), ``status`` the HTTP
    status it came with, ``message`` the server's explanation.
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}: {self.message}{where}"


class EricConnectionError(EricError, ConnectionError):
    """The server could not be reached, or the connection broke before it
    answered (code ``connection_failed``, no status)."""

    def __init__(self, message: str) -> None:
        super().__init__("connection_failed", message, None)


def error_from(response: httpx.Response) -> EricError:
    """The error a non-2xx answer carries (its body is read already).

    eric answers ``{"error": {"code": ..., "message": ...}}``; anything else
    (a proxy's page) keeps its status with the code ``http_<status>``.
    """
    try:
        body = json.loads(response.content)
        error = body["error"]
        return EricError(str(error["code"]), str(error["message"]), response.status_code)
    except (ValueError, KeyError, TypeError):
        text = response.content[:200].decode("utf-8", "replace")
        return EricError(f"http_{response.status_code}", text, response.status_code)


def connection_error(cause: httpx.TransportError) -> EricConnectionError:
    return EricConnectionError(f"{type(cause).__name__}: {cause}")
