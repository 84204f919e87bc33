"""Who is calling the panel: sessions, machine tokens, roles, CSRF and login rate limiting.

Default-deny once accounts exist: every route but the login page, ``/healthz`` and the MES
push (which has its own token) needs a session cookie (HttpOnly, SameSite=Strict) or an
``Authorization: Bearer`` machine token. A state-changing request with a session cookie
must also carry the session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form
field). Sessions live in the panel's memory: a restart logs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from appliance.panel.accounts import ROLES, has_users, token_role

COOKIE = "nameplate_session"
SESSION_S = 12 * 3600
OPEN_PATHS = ("/login", "/healthz", "/static/")
OWN_AUTH = ("/api/v1/expected/",)      # the MES push checks its own token
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FREE_FAILURES = 5                      # wrong passwords before logins are slowed down


@dataclass
class Caller:
    """An authenticated caller."""

    name: str
    role: str
    csrf: str | None = None            # None for machine tokens (no cookie, no CSRF)

    def at_least(self, role: str) -> bool:
        """True when this caller's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)


class Guard:
    """Sessions, the login throttle and the request check, for one panel app."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.sessions: dict[str, tuple[Caller, float]] = {}
        self.failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._users_checked = (0.0, False)

    def enforced(self) -> bool:
        """True once any account exists (checked at most every 5 s)."""
        checked_at, value = self._users_checked
        if time.monotonic() - checked_at > 5.0:
            value = has_users(self.db)
            self._users_checked = (time.monotonic(), value)
        return value

    # -- logins ------------------------------------------------------------------------------
    def retry_after(self, username: str) -> float:
        """Seconds before ``username`` may try again (0 when free to try)."""
        count, last = self.failures.get(username, (0, 0.0))
        if count < FREE_FAILURES:
            return 0.0
        wait = min(300.0, 2.0 ** (count - FREE_FAILURES + 1))
        return max(0.0, last + wait - time.monotonic())

    def failed(self, username: str) -> None:
        """Count a wrong password."""
        with self._lock:
            count, _ = self.failures.get(username, (0, 0.0))
            self.failures[username] = (count + 1, time.monotonic())

    def open_session(self, username: str, role: str) -> tuple[str, Caller]:
        """A new session (cookie value, caller)."""
        self.failures.pop(username, None)
        value = secrets.token_urlsafe(32)
        caller = Caller(username, role, csrf=secrets.token_urlsafe(24))
        with self._lock:
            self.sessions[value] = (caller, time.time() + SESSION_S)
        return value, caller

    def close_session(self, value: str | None) -> None:
        """Forget a session."""
        if value:
            self.sessions.pop(value, None)

    # -- every request -----------------------------------------------------------------------
    def caller(self, request: Request) -> Caller | None:
        """The caller of ``request`` by token or session cookie, or None."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            found = token_role(self.db, header[7:].strip())
            return Caller(f"token:{found[0]}", found[1]) if found else None
        session = self.sessions.get(request.cookies.get(COOKIE, ""))
        if session is None or session[1] < time.time():
            return None
        return session[0]

    async def middleware(self, request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Default-deny: identify the caller, refuse the unknown and the CSRF-less."""
        path = request.url.path
        if not self.enforced() or path.startswith(OPEN_PATHS) or path.startswith(OWN_AUTH):
            request.state.caller = Caller("local", "admin") if not self.enforced() else None
            return await call_next(request)
        caller = self.caller(request)
        if caller is None:
            if request.method in SAFE_METHODS and not path.startswith("/api/") \
                    and path != "/metrics":
                return RedirectResponse(f"/login?next={path}", status_code=303)
            return JSONResponse({"detail": "log in or send a token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if request.method not in SAFE_METHODS and caller.csrf is not None:
            sent = request.headers.get("x-csrf-token", "")
            if not sent and request.headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"):
                sent = str((await request.form()).get("csrf_token", ""))
            if not hmac.compare_digest(sent, caller.csrf):
                return JSONResponse({"detail": "missing or wrong CSRF token"}, status_code=403)
        request.state.caller = caller
        return await call_next(request)


def require(request: Request, role: str) -> Caller:
    """The caller when their role is ``role`` or above, else 403."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        raise HTTPException(401, "log in or send a token")
    if not caller.at_least(role):
        raise HTTPException(403, f"needs the {role} role (you are {caller.role})")
    return caller
