"""Panel accounts and machine tokens, kept in the appliance database.

Passwords are stored only as argon2 hashes (argon2-cffi) and tokens only as SHA-256 hashes;
neither is ever logged. Roles, lowest first: viewer, operator, supervisor, admin.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("viewer", "operator", "supervisor", "admin")
_HASHER = PasswordHasher()
# verified against when the user does not exist, so a wrong name costs the same time
_DUMMY = _HASHER.hash("no such user")


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


def _connect(path: Path) -> sqlite3.Connection:
    from appliance.store import Store

    Store(path).close()  # created and migrated
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _now() -> str:
    return datetime.now(UTC).isoformat()


def add_user(db: Path, username: str, password: str, role: str) -> None:
    """Create an account; :class:`AccountError` when it exists or the input is unusable."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("-", "").replace(
            "_", "").replace(".", "").isalnum():
        raise AccountError("user names are letters, digits and . _ - (at most 64)")
    if len(password) < 10:
        raise AccountError("passwords need at least 10 characters")
    conn = _connect(db)
    try:
        conn.execute("INSERT INTO users VALUES (?, ?, ?, ?, 0)",
                     [username, _HASHER.hash(password), role, _now()])
    except sqlite3.IntegrityError:
        raise AccountError(f"user {username!r} exists already") from None
    finally:
        conn.close()


def set_password(db: Path, username: str, password: str) -> None:
    """Change a password."""
    if len(password) < 10:
        raise AccountError("passwords need at least 10 characters")
    conn = _connect(db)
    changed = conn.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                           [_HASHER.hash(password), username]).rowcount
    conn.close()
    if not changed:
        raise AccountError(f"no user {username!r}")


def remove_user(db: Path, username: str) -> None:
    """Delete an account."""
    conn = _connect(db)
    removed = conn.execute("DELETE FROM users WHERE username = ?", [username]).rowcount
    conn.close()
    if not removed:
        raise AccountError(f"no user {username!r}")


def list_users(db: Path) -> list[dict[str, Any]]:
    """Accounts without their hashes."""
    conn = _connect(db)
    rows = conn.execute("SELECT username, role, created_at, disabled FROM users "
                        "ORDER BY username").fetchall()
    conn.close()
    return [{"username": u, "role": r, "created_at": c, "disabled": bool(d)}
            for u, r, c, d in rows]


def has_users(db: Path) -> bool:
    """True once any account exists (the panel then requires a login)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def check_password(db: Path, username: str, password: str) -> str | None:
    """The user's role when the password is right, else None (same cost either way)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        row = conn.execute("SELECT password_hash, role, disabled FROM users WHERE "
                           "username = ?", [username]).fetchone()
    except sqlite3.Error:
        row = None
    finally:
        conn.close()
    try:
        _HASHER.verify(row[0] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if row is None or row[2] else str(row[1])


def add_token(db: Path, name: str, role: str) -> str:
    """Create a machine token (shown once) with ``role``."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    conn = _connect(db)
    conn.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?)",
                 [hashlib.sha256(token.encode()).hexdigest(), name, role, _now()])
    conn.close()
    return token


def token_role(db: Path, token: str) -> tuple[str, str] | None:
    """(name, role) of a machine token, or None."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        row = conn.execute("SELECT name, role FROM api_tokens WHERE token_hash = ?",
                           [hashlib.sha256(token.encode()).hexdigest()]).fetchone()
    except sqlite3.Error:
        row = None
    finally:
        conn.close()
    return (str(row[0]), str(row[1])) if row else None
