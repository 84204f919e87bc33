"""Results out: the outbox table, its delivery worker and the sinks (SQL, webhook, MQTT)."""

from appliance.outbox.sinks import Sink, SinkError, build_sinks
from appliance.outbox.worker import OutboxWorker, outbox_status, result_event, retry_failed

__all__ = ["OutboxWorker", "Sink", "SinkError", "build_sinks", "outbox_status",
           "result_event", "retry_failed"]
