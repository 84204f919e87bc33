"""Triggers from the line over MQTT: ``TOPIC/STATION/trigger`` says which unit is in front of
the station (payload: the unit id, or ``{"unit_id": "U1001"}``)."""

from __future__ import annotations

import json
import logging
import queue
from typing import Any

from appliance.transport.limits import UNIT_PATTERN

log = logging.getLogger("camera")


class MqttTriggers:
    """Subscribes to one station's trigger topic; the daemon takes unit ids from ``pending``."""

    def __init__(self, *, host: str, port: int, topic: str, station: str) -> None:
        import re

        import paho.mqtt.client as mqtt

        self.topic = f"{topic.rstrip('/')}/{station}/trigger"
        self.pending: queue.Queue[str | None] = queue.Queue(maxsize=1000)
        self.rejected = 0
        self._unit = re.compile(UNIT_PATTERN)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"nameplate-camera-{station}")
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_message = self._message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _message(self, _client: Any, _data: Any, message: Any) -> None:
        text = message.payload.decode("utf-8", errors="replace").strip()
        unit: str | None = text or None
        if text.startswith("{"):
            try:
                data = json.loads(text)
                unit = data.get("unit_id") if isinstance(data, dict) else None
            except ValueError:
                unit = "\0"  # not JSON: refused below
        if unit is not None and (not isinstance(unit, str) or not self._unit.fullmatch(unit)):
            self.rejected += 1
            log.warning("trigger on %s refused: %r is not a unit id", self.topic, text[:80])
            return
        try:
            self.pending.put_nowait(unit)
        except queue.Full:
            self.rejected += 1

    def take(self) -> list[str | None]:
        """Unit ids triggered since the last call (None: a trigger without a unit id)."""
        units = []
        while True:
            try:
                units.append(self.pending.get_nowait())
            except queue.Empty:
                return units

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
