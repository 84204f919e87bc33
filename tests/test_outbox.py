"""Results out through real sinks (PostgreSQL, an HTTP webhook, Mosquitto), each stopped for a
while and started again: every stored inspection reaches every sink, counted, none twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from appliance.outbox import outbox_status
from appliance.record.service import Recorder
from appliance.settings import load_settings
from tests.conftest import wait_for, write_config
from tests.servers import PG_BIN, Mosquitto, Postgres, Webhook
from tests.test_delivery import _result

pytestmark = pytest.mark.skipif(not PG_BIN.is_dir(), reason="Debian postgresql missing")


@pytest.fixture
def sinks() -> Iterator[tuple[Postgres, Webhook, Mosquitto]]:
    pg, hook, broker = Postgres(), Webhook(), Mosquitto(persistent=True)
    pg.start()
    hook.start()
    broker.start()
    yield pg, hook, broker
    hook.stop()
    broker.close()
    pg.close()


class Subscriber:
    """Collects every verdict message of the broker (reconnecting after an outage)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.keys: list[str] = []
        self.available: list[str] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub",
                                  clean_session=False)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe("plant/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        self._lock = threading.Lock()

    def _message(self, _client: object, _data: object, message: object) -> None:
        topic, payload = message.topic, message.payload.decode()  # type: ignore[attr-defined]
        with self._lock:
            if topic.endswith("/available"):
                self.available.append(payload)
            else:
                self.keys.append(json.loads(payload)["idempotency_key"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_result_reaches_every_sink_once_through_outages(
        sinks: tuple[Postgres, Webhook, Mosquitto], tmp_path: Path, run_dir: Path) -> None:
    pg, hook, broker = sinks
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        "[outbox]\nbase_delay_s = 0.2\nmax_delay_s = 1.0\n"
        f'[[outbox.sinks]]\nname = "erp"\nkind = "sql"\nurl = "{pg.url}"\n'
        f'[[outbox.sinks]]\nname = "mes"\nkind = "webhook"\nurl = "{hook.url}"\n'
        f'[[outbox.sinks]]\nname = "line"\nkind = "mqtt"\nhost = "127.0.0.1"\n'
        f'port = {broker.port}\ntopic = "plant"\n'))
    recorder = Recorder(load_settings(config))
    subscriber = Subscriber(broker.port)
    assert subscriber.subscribed.wait(10)  # listening before the first result
    assert recorder.outbox is not None
    recorder.outbox.start()
    keys = []
    try:
        for i in range(40):
            result, payload = _result(i % 12)
            recorder.handle(result, payload)
            keys.append(f"{result.frame.inspection_id}:0")
            if i == 14:  # every sink goes down for a while
                wait_for(lambda: len(hook.keys) >= 10, 30, "deliveries before the outage")
                pg.stop()
                hook.stop()
                broker.stop(graceful=True)  # its subscriber's session survives the restart
            if i == 30:
                time.sleep(2)  # failures pile up, with back-off
                waiting = outbox_status(recorder.store.path)
                assert all(s["waiting"] > 0 and s["last_error"] for s in waiting.values())
                pg.start()
                hook.start()
                broker.start()

        def all_delivered() -> bool:
            status = outbox_status(recorder.store.path)
            return all(s["waiting"] == 0 and s["delivered"] == 40 for s in status.values())

        wait_for(all_delivered, 90, "every event delivered to every sink")
        wait_for(lambda: len(set(subscriber.keys)) == 40, 30, "every MQTT message")
    finally:
        recorder.outbox.stop()
        subscriber.close()
    assert sorted(hook.keys) == sorted(keys)                  # each key exactly once
    engine = sa.create_engine(pg.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT idempotency_key, verdict FROM nameplate_results"))
        stored = {key: verdict for key, verdict in rows}
    engine.dispose()
    assert sorted(stored) == sorted(keys)
    assert set(subscriber.keys) == set(keys)
    print(f"MQTT (QoS 1): {len(subscriber.keys)} messages for {len(keys)} results")
    assert "online" in subscriber.available
