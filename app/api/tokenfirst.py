"""API requests that carry a body are authenticated before their body is read.

FastAPI reads and parses a route's body before it runs the route's dependencies, so without
this a request with no valid token made the server read and parse its whole body before the
401 (a 20 MB body took 146 MB). This pure ASGI middleware checks the bearer token of every
/api/ request with a body first and answers the same 401 the route would, leaving the body
unread. The route's own dependency (`deps.get_user`) still decides who the user is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import AuthError
from app.services.accounts import authenticate
from app.services.context import Context

API_PREFIX = "/api/"


class TokenFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError()
            ctx: Context = scope["app"].state.context
            await authenticate(ctx, token.strip())
        except AuthError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
