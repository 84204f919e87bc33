"""Login, logout and "who am I" for the panel."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from appliance.panel.accounts import check_password
from appliance.panel.auth import COOKIE, SESSION_S, Guard, require

router = APIRouter()

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nameplate appliance: log in</title>
<style>body{{font:20px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh}}
form{{display:grid;gap:12px;min-width:320px}}input,button{{font-size:22px;padding:8px}}
.error{{color:#b00020}}</style></head><body><form method="post" action="/login">
<h1>Nameplate appliance</h1>{error}
<label>User <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
 required></label><input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button></form></body></html>"""


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str = "/") -> str:
    """The login form."""
    return PAGE.format(error="", next=html.escape(next if next.startswith("/") else "/"))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password (throttled after repeated failures) and open a session."""
    guard = _guard(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        data: dict[str, Any] = await request.json()
    else:
        data = dict(await request.form())
    username, password = str(data.get("username", "")), str(data.get("password", ""))
    wait = guard.retry_after(username)
    if wait > 0:
        raise HTTPException(429, f"too many wrong passwords: try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    role = check_password(request.app.state.db_path, username, password)
    if role is None:
        guard.failed(username)
        if "json" in request.headers.get("content-type", ""):
            raise HTTPException(401, "wrong user name or password")
        return HTMLResponse(PAGE.format(error='<p class="error">Wrong user name or password'
                                        '</p>', next="/"), status_code=401)
    value, caller = guard.open_session(username, role)
    target = str(data.get("next") or "/")
    response: Response = (RedirectResponse(target if target.startswith("/") else "/", 303)
                          if "json" not in request.headers.get("content-type", "")
                          else Response(status_code=204))
    response.set_cookie(COOKIE, value, max_age=SESSION_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    response.headers["X-CSRF-Token"] = caller.csrf or ""
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Close the session."""
    _guard(request).close_session(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/api/v1/me")
def me(request: Request) -> dict[str, Any]:
    """The caller, their role, and the CSRF token a page sends with its actions."""
    caller = require(request, "viewer")
    return {"name": caller.name, "role": caller.role, "csrf_token": caller.csrf}
