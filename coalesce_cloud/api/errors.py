"""One error shape for every answer that is not a success::

    {"error": {"code": "stable_code", "message": "what happened and what to do", ...extra fields}}

Routes raise :class:`ApiError`; validation errors (422), unknown routes and methods, oversized bodies
(413) and anything unexpected (500) are turned into the same shape here. Clients switch on ``code``;
``message`` is for people and may change.

The OpenAPI schema lists, per operation, every refusal it can answer: each module that raises an
:class:`ApiError` declares it beside the raise as an :class:`Answer`, and each route passes the answers it
can give (its dependencies' included) to :func:`documented`. A test fuzzes the schema against the server,
so an answer a route gives but does not declare fails the suite.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coalesce_cloud.api.schemas import error_body
from coalesce_cloud.errors import CloudServiceError
from coalesce_common.logutil import RateLimitedLog

logger = logging.getLogger(__name__)
_untrusted_log = RateLimitedLog(logger)

_MAX_DETAILS = 10
_MAX_TEXT = 200


class ApiError(CloudServiceError):
    """An answer to the client: HTTP ``status``, a stable ``code``, a message, and optional extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, headers=self.headers, **self.extra)


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status, headers=headers)


@dataclass(frozen=True)
class Answer:
    """A refusal an operation can give: its HTTP status, its ``code`` and when it comes."""

    status: int
    code: str
    when: str
    headers: tuple[str, ...] = ()


def documented(*answers: Answer) -> dict[int | str, dict[str, Any]]:
    """FastAPI's ``responses=`` for these answers: per status, an error body whose ``code`` is an enum."""
    by_status: dict[int, list[Answer]] = {}
    for answer in answers:
        by_status.setdefault(answer.status, []).append(answer)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        group = by_status[status]
        codes = tuple(sorted({a.code for a in group}))
        headers = sorted({h for a in group for h in a.headers})
        responses[status] = {
            "model": error_body(codes),
            "description": "; ".join(f"`{a.code}`: {a.when}" for a in group),
            **({"headers": {h: {"schema": {"type": "string"}} for h in headers}} if headers else {}),
        }
    return responses


VALIDATION = Answer(422, "validation_error", "the request does not match this schema (details says where)")
# What a route with a JSON body may answer besides its own refusals.
BODY_ANSWERS = (
    Answer(400, "bad_request", "the body cannot be parsed (it is not UTF-8 JSON)"),
    Answer(413, "payload_too_large", "the body is larger than the server takes"),
    VALIDATION,
)
UNAUTHENTICATED = Answer(401, "unauthenticated", "no valid bearer token", headers=("WWW-Authenticate",))
THROTTLED = Answer(429, "too_many_attempts", "too many failures from this client", headers=("Retry-After",))


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def throttled(retry_after: float) -> ApiError:
    seconds = max(1, round(retry_after + 0.5))
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many failed attempts: retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for item in exc.errors()[:_MAX_DETAILS]:
        # Never echo the input back: it may be huge, or a secret typed into the wrong field.
        details.append(
            {
                "loc": [str(part)[:_MAX_TEXT] for part in item.get("loc", ())],
                "message": str(item.get("msg", ""))[:_MAX_TEXT],
                "type": str(item.get("type", ""))[:_MAX_TEXT],
            }
        )
    _untrusted_log.warning("invalid-request", "invalid request to %s %s", request.method, request.url.path)
    first = details[0] if details else {"loc": [], "message": "invalid request"}
    where = ".".join(str(p) for p in first["loc"][1:]) or "request"
    return error_response(422, "validation_error", f"Invalid {where}: {first['message']}", details=details)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "The server failed to handle this request.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or by counting what arrives.

    API bodies are small, so the body is read here in full (up to the limit) and handed on in one piece.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and not (value.isdigit() and int(value) <= self.max_bytes):
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"The request body is larger than {self.max_bytes} bytes."
        )
        await response(scope, receive, send)
