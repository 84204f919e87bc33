"""Reject outputs to the line's PLC, per station, written the moment a verdict is stored.

``reject`` is written True for the verdicts the configuration names (MISMATCH by default) and
False for the others, on an OPC UA node of the PLC's server (asyncua) or a Modbus TCP coil
(pymodbus). A writer thread takes the signals from a bounded queue, so a slow PLC never holds
up the recorder; the time from frame capture to the written signal is measured.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("signals")


class SignalError(RuntimeError):
    """The PLC did not take the signal."""


class Writer(Protocol):
    """Writes one station's reject output."""

    def write(self, reject: bool) -> None:
        """Set the output; :class:`SignalError` when the PLC did not take it."""
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


class OpcUaWriter:
    """Writes a Boolean node on the PLC's OPC UA server (reconnects when needed)."""

    def __init__(self, *, url: str, node: str, timeout_s: float = 2.0) -> None:
        self.url = url
        self.node_id = node
        self.timeout_s = timeout_s
        self.client: Any = None

    def _node(self) -> Any:
        from asyncua.sync import Client

        if self.client is None:
            client = Client(self.url, timeout=self.timeout_s)
            client.connect()
            self.client = client
        return self.client.get_node(self.node_id)

    def write(self, reject: bool) -> None:
        """Write the node (Boolean)."""
        from asyncua import ua

        try:
            self._node().write_value(ua.DataValue(ua.Variant(reject, ua.VariantType.Boolean)))
        except Exception as exc:
            self.close()
            raise SignalError(f"{self.url} {self.node_id}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Disconnect."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.disconnect()
            self.client = None


class ModbusWriter:
    """Writes a coil of a Modbus TCP device."""

    def __init__(self, *, host: str, port: int = 502, coil: int = 0, device_id: int = 1,
                 timeout_s: float = 2.0) -> None:
        from pymodbus.client import ModbusTcpClient

        self.where = f"modbus://{host}:{port} coil {coil}"
        self.coil = coil
        self.device_id = device_id
        self.client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)

    def write(self, reject: bool) -> None:
        """Write the coil."""
        try:
            if not self.client.connected and not self.client.connect():
                raise SignalError(f"{self.where}: cannot connect")
            result = self.client.write_coil(self.coil, reject, device_id=self.device_id)
        except SignalError:
            raise
        except Exception as exc:
            self.client.close()
            raise SignalError(f"{self.where}: {type(exc).__name__}: {exc}") from None
        if result.isError():
            raise SignalError(f"{self.where}: device answered {result}")

    def close(self) -> None:
        """Disconnect."""
        self.client.close()


@dataclass(frozen=True)
class Signal:
    """One verdict on its way to a station's PLC."""

    station: str
    inspection_id: str
    verdict: str
    captured_at: datetime


def build_signals(line: Any) -> LineSignals | None:
    """The line's reject outputs from the ``[line]`` configuration (None when there are none)."""
    if not line.outputs:
        return None
    writers: dict[str, Writer] = {}
    for output in line.outputs:
        if output.kind == "opcua":
            writers[output.station] = OpcUaWriter(url=output.url, node=output.node,
                                                  timeout_s=output.timeout_s)
        else:
            writers[output.station] = ModbusWriter(host=output.host, port=output.port,
                                                   coil=output.coil,
                                                   device_id=output.device_id,
                                                   timeout_s=output.timeout_s)
    return LineSignals(writers, reject_on=set(line.reject_on))


class LineSignals:
    """A writer per station and one thread that writes signals in order."""

    def __init__(self, writers: dict[str, Writer], *, reject_on: set[str],
                 queue_size: int = 1000) -> None:
        self.writers = writers
        self.reject_on = reject_on
        self.queue: queue.Queue[Signal | None] = queue.Queue(maxsize=queue_size)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.latencies_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="signals", daemon=True)
        self._thread.start()

    def emit(self, station: str, inspection_id: str, verdict: str,
             captured_at: datetime) -> None:
        """Queue a station's verdict (never blocks; a full queue drops it, counted)."""
        if station not in self.writers:
            return
        try:
            self.queue.put_nowait(Signal(station, inspection_id, verdict, captured_at))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (signal := self.queue.get()) is not None:
            reject = signal.verdict in self.reject_on
            try:
                self.writers[signal.station].write(reject)
            except SignalError as exc:
                self.failed += 1
                log.error("reject signal for %s (%s) not written: %s", signal.inspection_id,
                          signal.verdict, exc)
                continue
            self.sent += 1
            self.latencies_s.append(time.time() - signal.captured_at.timestamp())
            del self.latencies_s[:-10_000]

    def status(self) -> dict[str, object]:
        """Counts and frame → signal latency percentiles (ms) of the recent signals."""
        ordered = sorted(self.latencies_s)

        def pct(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) \
                if ordered else None

        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "frame_to_signal_p50_ms": pct(0.5), "frame_to_signal_p99_ms": pct(0.99)}

    def close(self) -> None:
        """Write what is queued, then stop and disconnect."""
        self.queue.put(None)
        self._thread.join(timeout=10)
        for writer in self.writers.values():
            writer.close()
