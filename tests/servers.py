"""Real servers on loopback for integration tests: PostgreSQL, Mosquitto, an HTTP webhook.

Each can be stopped and started again on the same port, to play an outage.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import free_port

PG_BIN = Path(next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))), "/nonexistent"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def wait_for_port(port: int, what: str, timeout: float = 10.0) -> None:
    """Return once something accepts TCP connections on loopback ``port``."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start on port {port}")


def _as_postgres(args: list[str]) -> list[str]:
    return args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]


class Postgres:
    """A throw-away PostgreSQL cluster in a temporary folder (trust auth, loopback only)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="np-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.dir / "data"),
                                     "-U", "nameplate", "-A", "trust", "--no-sync"]),
                       check=True, capture_output=True)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return f"postgresql+psycopg://nameplate@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or start again) on the same port."""
        subprocess.run(_as_postgres([
            str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-l",
            str(self.dir / "log"), "-o", f"-p {self.port} -k {self.dir} -h 127.0.0.1 "
            "-c fsync=off", "start"]), check=True, capture_output=True)

    def stop(self) -> None:
        """Stop now (fast shutdown)."""
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                     "-m", "fast", "-w", "stop"]), capture_output=True)

    def close(self) -> None:
        """Stop and remove the cluster."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Mosquitto:
    """A Mosquitto broker on a loopback port (anonymous). ``persistent``: it keeps its
    durable sessions across a graceful restart (``stop(graceful=True)``), so a subscriber
    still reconnecting gets what was published meanwhile, as a plant's broker would."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="np-mqtt-"))
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        keep = f"persistence true\npersistence_location {self.dir}/\n" if persistent \
            else "persistence false\n"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{keep}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again) on the same port."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, "mosquitto")

    def stop(self, *, graceful: bool = False) -> None:
        """Kill the broker (``graceful``: terminate it, so it saves its sessions)."""
        if self.proc is not None:
            if graceful:
                self.proc.terminate()
            else:
                self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop and clean up."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Webhook:
    """An HTTP endpoint that records each POST's ``Idempotency-Key`` and JSON body."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[str] = []
        self.bodies: list[dict[str, object]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/results"

    def start(self) -> None:
        """Serve (or serve again) on the same port."""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.keys.append(self.headers.get("Idempotency-Key", ""))
                hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving (connections are refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class OpcUaPlc:
    """An OPC UA server with one writable Boolean node per station, recording every write."""

    def __init__(self, stations: list[str]) -> None:
        from asyncua import ua
        from asyncua.common.callback import CallbackType
        from asyncua.sync import Server

        self.port = free_port()
        self.writes: list[tuple[str, bool]] = []
        self.server = Server()
        self.server.set_endpoint(self.url)
        index = self.server.register_namespace("urn:nameplate:test-plc")
        self.nodes: dict[str, str] = {}
        for station in stations:
            obj = self.server.nodes.objects.add_object(index, station)
            node = obj.add_variable(ua.NodeId(f"{station}.Reject", index), "Reject", False)
            node.set_writable()
            self.nodes[station] = node.nodeid.to_string()
        names = {v: k for k, v in self.nodes.items()}

        def written(event: object, _dispatcher: object) -> None:
            for item in event.request_params.NodesToWrite:  # type: ignore[attr-defined]
                station = names.get(item.NodeId.to_string())
                if station is not None:  # the server writes its own status nodes too
                    self.writes.append((station, bool(item.Value.Value.Value)))

        self.server.start()
        self.server.aio_obj.iserver.subscribe_server_callback(CallbackType.PostWrite, written)

    @property
    def url(self) -> str:
        """The endpoint."""
        return f"opc.tcp://127.0.0.1:{self.port}/plc"

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()


class ModbusPlc:
    """A Modbus TCP device whose coil writes are recorded (function code 5)."""

    def __init__(self) -> None:
        import asyncio

        from pymodbus.datastore import (
            ModbusDeviceContext,
            ModbusSequentialDataBlock,
            ModbusServerContext,
        )
        from pymodbus.server import ModbusTcpServer

        self.port = free_port()
        self.writes: list[tuple[int, bool]] = []
        context = ModbusServerContext(devices=ModbusDeviceContext(
            co=ModbusSequentialDataBlock(1, [False] * 64)), single=True)

        def trace(sending: bool, pdu: object) -> object:
            if not sending and getattr(pdu, "function_code", 0) == 5:
                self.writes.append((pdu.address, bool(pdu.bits[0])))  # type: ignore[attr-defined]
            return pdu

        self.loop = asyncio.new_event_loop()

        async def serve() -> None:
            self.server = ModbusTcpServer(context, address=("127.0.0.1", self.port),
                                          trace_pdu=trace)  # type: ignore[arg-type]
            await self.server.serve_forever()

        threading.Thread(target=self.loop.run_until_complete, args=(serve(),),
                         daemon=True).start()
        wait_for_port(self.port, "the modbus server")

    def close(self) -> None:
        """Stop the server."""
        import asyncio

        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(timeout=5)
