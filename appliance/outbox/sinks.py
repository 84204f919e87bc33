"""Result sinks: where stored inspections go. Each delivery carries an idempotency key
(inspection id + attempt); a sink that acknowledges a key never gets it twice."""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx


class SinkError(RuntimeError):
    """A delivery that did not go through (the sink is down, refused, timed out)."""


class Sink(Protocol):
    """One destination of result events."""

    name: str

    def deliver(self, key: str, event: dict[str, Any]) -> None:
        """Deliver one event; raise :class:`SinkError` when it did not go through."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class WebhookSink:
    """POST each event as JSON; 2xx is an acknowledgement. ``Idempotency-Key`` is the key."""

    def __init__(self, name: str, *, url: str, token: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.name = name
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def deliver(self, key: str, event: dict[str, Any]) -> None:
        """POST the event."""
        try:
            response = self.client.post(self.url, json=event, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            raise SinkError(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise SinkError(f"{self.url}: HTTP {response.status_code}")

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class SqlSink:
    """INSERT each event into a table (created when missing); the key is unique there, so a
    retried delivery is a no-op (``ON CONFLICT DO NOTHING``). Any SQLAlchemy URL."""

    def __init__(self, name: str, *, url: str, table: str = "nameplate_results") -> None:
        import sqlalchemy as sa

        self.name = name
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        meta = sa.MetaData()
        self.table = sa.Table(
            table, meta,
            sa.Column("idempotency_key", sa.String(200), primary_key=True),
            sa.Column("inspection_id", sa.String(100), nullable=False),
            sa.Column("attempt", sa.Integer, nullable=False),
            sa.Column("station", sa.String(40)), sa.Column("unit_id", sa.String(80)),
            sa.Column("verdict", sa.String(20), nullable=False),
            sa.Column("reason", sa.Text), sa.Column("stored_at", sa.String(40)),
            sa.Column("event", sa.Text, nullable=False))
        self._meta = meta
        self._created = False

    def deliver(self, key: str, event: dict[str, Any]) -> None:
        """Insert (or find already there) the event's row."""
        import sqlalchemy as sa
        from sqlalchemy.dialects import postgresql, sqlite

        row = {"idempotency_key": key, "inspection_id": event["inspection_id"],
               "attempt": event["attempt"], "station": event.get("station"),
               "unit_id": event.get("unit_id"), "verdict": event["verdict"],
               "reason": event.get("reason"), "stored_at": event.get("stored_at"),
               "event": json.dumps(event)}
        try:
            if not self._created:
                self._meta.create_all(self.engine)
                self._created = True
            dialect = self.engine.dialect.name
            insert = (postgresql.insert if dialect == "postgresql"
                      else sqlite.insert if dialect == "sqlite" else None)
            with self.engine.begin() as conn:
                if insert is not None:
                    conn.execute(insert(self.table).values(**row).on_conflict_do_nothing())
                elif conn.execute(sa.select(self.table.c.idempotency_key).where(
                        self.table.c.idempotency_key == key)).first() is None:
                    conn.execute(self.table.insert().values(**row))
        except sa.exc.SQLAlchemyError as exc:
            raise SinkError(f"{self.engine.url.render_as_string(hide_password=True)}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()


class MqttSink:
    """Publish each event (QoS 1, retained off) to ``{topic}/{station}/verdict`` and keep an
    availability topic ``{topic}/available`` (``online``; ``offline`` by last will)."""

    def __init__(self, name: str, *, host: str, port: int = 1883, topic: str = "nameplate",
                 timeout_s: float = 5.0, username: str | None = None,
                 password: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.name = name
        self.topic = topic.rstrip("/")
        self.timeout_s = timeout_s
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"nameplate-{name}", clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(f"{self.topic}/available", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._online
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _online(self, client: Any, *_: Any) -> None:
        client.publish(f"{self.topic}/available", "online", qos=1, retain=True)

    def deliver(self, key: str, event: dict[str, Any]) -> None:
        """Publish and wait for the broker's PUBACK."""
        if not self.client.is_connected():
            raise SinkError(f"MQTT broker not connected ({self.topic})")
        station = event.get("station") or "unknown"
        info = self.client.publish(f"{self.topic}/{station}/verdict",
                                   json.dumps(dict(event, idempotency_key=key)), qos=1)
        try:
            info.wait_for_publish(timeout=self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise SinkError(f"MQTT publish failed: {exc}") from None
        if not info.is_published():
            raise SinkError(f"MQTT broker did not acknowledge within {self.timeout_s:g} s")

    def close(self) -> None:
        """Say offline and disconnect."""
        if self.client.is_connected():
            self.client.publish(f"{self.topic}/available", "offline", qos=1,
                                retain=True).wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()


def build_sinks(configs: list[Any]) -> list[Sink]:
    """Sinks from the ``[[outbox.sinks]]`` configuration entries."""
    sinks: list[Sink] = []
    for config in configs:
        if config.kind == "webhook":
            sinks.append(WebhookSink(config.name, url=config.url, token=config.token,
                                     timeout_s=config.timeout_s))
        elif config.kind == "sql":
            sinks.append(SqlSink(config.name, url=config.url, table=config.table))
        else:
            sinks.append(MqttSink(config.name, host=config.host, port=config.port,
                                  topic=config.topic, timeout_s=config.timeout_s,
                                  username=config.username, password=config.password))
    return sinks
