"""ZeroMQ CURVE for ``tcp://`` endpoints across hosts: encrypted, and only known keys connect.

Every process of one appliance holds the same certificate (``nameplate keys generate DIR``
writes ``appliance.key`` and ``appliance.key_secret``; copy DIR to each host). A binding
socket is a CURVE server and a ZAP handler admits only public keys found in
``DIR/authorized/``; a connecting socket authenticates with the certificate. ``ipc://`` and
``inproc://`` endpoints stay plain (file permissions guard them).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class KeyError_(RuntimeError):
    """The CURVE key folder is missing or incomplete; the message names the file."""


@dataclass(frozen=True)
class CurveKeys:
    """The appliance's certificate and the folder of public keys allowed to connect."""

    public: bytes
    secret: bytes
    authorized: Path


_ACTIVE: list[CurveKeys | None] = [None]
_AUTHENTICATORS: list[ThreadAuthenticator] = []


def generate_keys(folder: Path) -> Path:
    """Create ``appliance.key``/``appliance.key_secret`` in ``folder`` and authorise the key."""
    folder.mkdir(parents=True, exist_ok=True)
    public, _ = zmq.auth.create_certificates(str(folder), "appliance")
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True)
    shutil.copy(public, authorized / "appliance.key")
    (folder / "appliance.key_secret").chmod(0o600)
    return Path(public)


def load_keys(folder: Path) -> CurveKeys:
    """Read the certificate from ``folder``; :class:`KeyError_` says what is missing."""
    secret_file = folder / "appliance.key_secret"
    authorized = folder / "authorized"
    if not secret_file.is_file():
        raise KeyError_(f"{secret_file}: CURVE secret key not found "
                        "(create it with: nameplate keys generate DIR)")
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise KeyError_(f"{authorized}: no authorised public keys")
    try:
        public, secret = zmq.auth.load_certificate(str(secret_file))
    except (OSError, ValueError) as exc:
        raise KeyError_(f"{secret_file}: not a CURVE certificate: {exc}") from None
    if secret is None:
        raise KeyError_(f"{secret_file}: holds no secret key")
    return CurveKeys(public=public, secret=secret, authorized=authorized)


def enable_curve(keys: CurveKeys | None) -> None:
    """Use ``keys`` for every ``tcp://`` channel this process opens from now on (None: off)."""
    _ACTIVE[0] = keys
    if keys is not None and not _AUTHENTICATORS:
        auth = ThreadAuthenticator(zmq.Context.instance())
        auth.start()
        auth.configure_curve(domain="*", location=str(keys.authorized))
        _AUTHENTICATORS.append(auth)


def secure(socket: zmq.Socket[bytes], endpoint: str, *, server: bool) -> None:
    """Make ``socket`` a CURVE server or client when CURVE is on and the endpoint is tcp."""
    keys = _ACTIVE[0]
    if keys is None or not endpoint.startswith("tcp://"):
        return
    socket.curve_publickey = keys.public
    socket.curve_secretkey = keys.secret
    if server:
        socket.curve_server = True
    else:
        socket.curve_serverkey = keys.public
