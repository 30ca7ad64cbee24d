"""A data-plane request as API Gateway receives it, and the answer it sends back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

_CGI_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
MAX_UNSIZED_BODY = 10 * 1024 * 1024 + 1  # API Gateway's 10 MB payload quota, plus one byte to tell it was passed


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str  # after the stage: "/items/42"
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    protocol: str
    host: str

    def header(self, name: str) -> str | None:
        """The header's value (the last one sent), case-insensitively."""
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return found[-1] if found else None

    def query_value(self, name: str) -> str | None:
        found = [value for key, value in self.query if key == name]
        return found[-1] if found else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], path: str) -> IncomingRequest:
        # WSGI hands header names upper-cased with underscores: the case the client sent is gone, so
        # names are rebuilt in the conventional Title-Case (X-Api-Key), and repeated headers arrive joined.
        headers = [
            (_CGI_HEADERS.get(key) or key[5:].replace("_", "-").title(), str(value))
            for key, value in environ.items()
            if (key.startswith("HTTP_") or key in _CGI_HEADERS) and value != ""
        ]
        return cls(
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=_text(path) or "/",
            headers=tuple(headers),
            query=tuple(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)),
            body=read_body(environ),
            source_ip=str(environ.get("REMOTE_ADDR", "")),
            protocol=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
            host=str(environ.get("HTTP_HOST", "")),
        )


def _text(wsgi_string: str) -> str:
    """PEP 3333 carries the URL's bytes as latin-1 text; the path's UTF-8 is recovered here."""
    return wsgi_string.encode("latin-1").decode("utf-8", "replace")


def read_body(environ: Mapping[str, Any]) -> bytes:
    """The whole body, as Content-Length says, or up to the end of a chunked one (capped past the quota)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read(MAX_UNSIZED_BODY))
    return b""


@dataclass
class Answer:
    """What goes back to the client: status, headers (repeatable) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def status_line(self) -> str:
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:  # a status code Python does not name (a Lambda may return any)
            return f"{self.status} Unknown"


def drain(environ: Mapping[str, Any]) -> None:
    """Read and drop an unread body, so that a kept-alive connection's next request starts where it should."""
    stream, left = environ.get("wsgi.input"), int(environ.get("CONTENT_LENGTH") or 0)
    while stream is not None and left > 0:
        chunk = stream.read(min(left, 65_536))
        if not chunk:
            return
        left -= len(chunk)
