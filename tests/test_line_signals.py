"""Reject outputs reach the line's PLC: OPC UA (asyncua server) and Modbus TCP (pymodbus)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from appliance.record.service import Recorder
from appliance.runtime import read_status
from appliance.settings import load_settings
from appliance.transport import FieldValue
from tests.conftest import Services, wait_for, wait_ready, write_config
from tests.servers import ModbusPlc, OpcUaPlc
from tests.test_delivery import _result


def test_modbus_coil_follows_each_verdict(tmp_path: Path, run_dir: Path) -> None:
    plc = ModbusPlc()
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        f'[[line.outputs]]\nstation = "line1"\nkind = "modbus"\nhost = "127.0.0.1"\n'
        f"port = {plc.port}\ncoil = 7\n"))
    recorder = Recorder(load_settings(config))
    try:
        good, payload = _result(0)
        recorder.handle(good, payload)                      # PASS: reject cleared
        wrong, payload = _result(1)
        fields = dict(wrong.fields, serial=FieldValue(value="99999999ZZ", confidence=0.99))
        decision = recorder.handle(wrong.model_copy(update={"fields": fields}), payload)
        assert decision is not None and decision.verdict.value == "RESHOOT"  # to confirm
        again, payload = _result(1, attempt=1, inspection_id=wrong.frame.inspection_id)
        decision = recorder.handle(again.model_copy(update={"fields": fields}), payload)
        assert decision is not None and decision.verdict.value == "MISMATCH"
        wait_for(lambda: len(plc.writes) == 3, 10, "three coil writes")
    finally:
        assert recorder.signals is not None
        recorder.signals.close()
        plc.close()
    assert plc.writes == [(7, False), (7, True), (7, True)]  # held while it waits, then rejected
    assert recorder.signals.status()["sent"] == 3


@pytest.mark.slow
def test_opcua_reject_for_every_mismatch_and_review_of_a_demo_run(tmp_path: Path,
                                                                  run_dir: Path) -> None:
    plc = OpcUaPlc(["line1"])
    # 0.5 Hz: a pace the reader keeps on 2 CPU cores, so the latency is not queueing
    config = write_config(tmp_path, run_dir=run_dir, stations=(
        '[[stations]]\nid = "line1"\nsource = "synthetic"\nrate_hz = 0.5\nseed = 3\n'), extra=(
        f'[[line.outputs]]\nstation = "line1"\nkind = "opcua"\nurl = "{plc.url}"\n'
        f'node = "{plc.nodes["line1"]}"\n'))
    services = Services(config, tmp_path / "logs")
    db = tmp_path / "data" / "appliance.db"

    def stored() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    try:
        services.start("record", "record")
        services.start("infer", "infer")
        wait_ready(run_dir, "infer", timeout=180)
        services.start("camera", "camera", "--station", "line1")
        wait_for(lambda: stored() >= 12, 180, "12 stored inspections")
        services.procs["camera"].terminate()
        time.sleep(3)
    finally:
        services.stop()  # the recorder writes what is queued before it exits
        plc.close()
    with sqlite3.connect(db) as conn:
        verdicts = [v for (v,) in conn.execute(
            "SELECT verdict FROM attempts ORDER BY stored_at")]
    assert "MISMATCH" in verdicts and "PASS" in verdicts
    assert plc.writes == [("line1", v in ("MISMATCH", "REVIEW", "RESHOOT")) for v in verdicts]
    log = services.log("record")
    assert "not written" not in log
    signals = (read_status(run_dir, "record") or {})["signals"]
    assert signals["sent"] == len(verdicts) and signals["failed"] == 0
    print(f"frame → PLC signal over {len(verdicts)} verdicts: p50 "
          f"{signals['frame_to_signal_p50_ms']} ms, p99 {signals['frame_to_signal_p99_ms']} ms")


@pytest.mark.slow
def test_mqtt_trigger_names_the_unit(tmp_path: Path, run_dir: Path) -> None:
    import paho.mqtt.publish as publish

    from appliance.transport import FrameReceiver
    from tests.servers import Mosquitto

    broker = Mosquitto()
    broker.start()
    config = write_config(tmp_path, run_dir=run_dir, extra=(
        f'[line]\ntrigger_mqtt_host = "127.0.0.1"\ntrigger_mqtt_port = {broker.port}\n'
        'trigger_mqtt_topic = "plant"\n'), stations=(
        '[[stations]]\nid = "line1"\nsource = "synthetic"\ntrigger = "external"\n'))
    receiver = FrameReceiver(f"ipc://{run_dir}/frames.sock")
    services = Services(config, tmp_path / "logs")
    try:
        services.start("camera", "camera", "--station", "line1")
        wait_ready(run_dir, "camera-line1", timeout=60)
        time.sleep(1)  # the subscription is made on connect
        for payload in ('{"unit_id": "U1005"}', "U1009", "../etc"):
            publish.single("plant/line1/trigger", payload, hostname="127.0.0.1",
                           port=broker.port, qos=1)
        got = [receiver.receive(timeout_ms=20_000) for _ in range(2)]
        assert [g[0].unit_id for g in got if g] == ["U1005", "U1009"]
        assert receiver.receive(timeout_ms=2000) is None  # the bad unit id started nothing
        assert "is not a unit id" in services.log("camera")
    finally:
        services.stop()
        receiver.close()
        broker.close()
