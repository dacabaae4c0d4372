"""Access control of the gateway: the access token a gateway bound off loopback requires."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmfleet.runtime.gateway.routes import _error

if TYPE_CHECKING:
    from starlette.routing import Router

TOKEN_COOKIE = "cmfleet_token"


class TokenMiddleware:
    """Requires the access token (bearer header, ``?token=`` or cookie) on every HTTP request."""

    router: Router  # the wrapped app's, set by Gateway.app (for those who add routes later)

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token
        self.routes = getattr(app, "routes", [])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import secrets
        from urllib.parse import parse_qs

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        from_query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        given = given or from_query
        if given is None:
            for part in headers.get("cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == TOKEN_COOKIE:
                    given = value
        if given is None or not secrets.compare_digest(given, self.token):
            response = _error(
                401, "this cmfleet dev server needs its access token: Authorization: Bearer <token> or ?token="
            )
            await response(scope, receive, send)
            return
        if from_query:

            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send)
