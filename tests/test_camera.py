"""Camera daemon: burst selection, part-present, a video file, a real ffmpeg stream that dies
and comes back, reshoot over real ZeroMQ sockets, and a bad source URL."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.runtime import read_status
from appliance.synth import render_demo_plate
from appliance.synth.camera import background
from appliance.transport import (
    AckCommand,
    FrameReceiver,
    ReshootCommand,
    ReshootReason,
    Sender,
    TriggerCommand,
)
from camera.selection import part_present, select_sharpest
from camera.sources import FolderSource
from tests.conftest import Services, free_port, wait_for, write_config
from tests.plates import demo_records, plate_values

FFMPEG = shutil.which("ffmpeg")


def plate(i: int = 0) -> np.ndarray:
    return render_demo_plate(plate_values(demo_records()[i]), seed=i).image


def test_burst_keeps_the_sharpest_frame() -> None:
    sharp = plate()
    burst = [cv2.GaussianBlur(sharp, (0, 0), s) for s in (3.0, 1.5)] + [sharp] + \
        [cv2.GaussianBlur(sharp, (0, 0), 2.2)]
    best, scores = select_sharpest(burst)
    assert best == 2
    assert scores[0] < scores[3] < scores[1] < scores[2]


def test_part_present_ignores_a_folder_of_backgrounds(tmp_path: Path) -> None:
    for i in range(12):
        bg = (background(960, 1280, random.Random(i), np.random.default_rng(i)) * 255)
        cv2.imwrite(str(tmp_path / f"bg{i:02d}.png"), bg.astype(np.uint8))
    source = FolderSource(tmp_path, loop=False)
    frames = []
    while (capture := source.capture()) is not None:
        frames.append(capture.image)
    assert len(frames) == 12
    assert not any(part_present(f) for f in frames)
    assert all(part_present(plate(i)) for i in range(4))


def camera_config(tmp_path: Path, run_dir: Path, station: str) -> Path:
    return write_config(tmp_path, run_dir=run_dir, stations=station, port=free_port())


def frames_from(receiver: FrameReceiver, count: int, timeout: float,
                ack_to: str | None = None) -> list:  # type: ignore[type-arg]
    """Receive up to ``count`` frames; with ``ack_to`` (a control endpoint) acknowledge each,
    as the recorder does, so the camera's window never fills."""
    got = []
    acks = Sender(ack_to) if ack_to else None
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = receiver.receive(timeout_ms=200)
        if message is not None:
            got.append(message)
            if acks is not None:
                frame = message[0]
                acks.send(AckCommand(station=frame.station, inspection_id=frame.inspection_id,
                                     attempt=frame.attempt), timeout_ms=1000)
    if acks is not None:
        acks.close()
    return got


@pytest.mark.slow
def test_video_file_through_opencv(tmp_path: Path, run_dir: Path) -> None:
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (1280, 960))
    for i in range(6):
        writer.write(cv2.cvtColor(plate(i), cv2.COLOR_RGB2BGR))
    writer.release()
    config = camera_config(tmp_path, run_dir, f'[[stations]]\nid = "vid"\nsource = "opencv"\n'
                           f'uri = "{video}"\nrate_hz = 5.0\n')
    receiver = FrameReceiver(f"ipc://{run_dir}/frames.sock")
    services = Services(config, tmp_path / "logs")
    try:
        services.start("camera", "camera", "--station", "vid")
        got = frames_from(receiver, 3, 60)
        assert len(got) == 3
        frame, payload = got[0]
        assert frame.station == "vid" and (frame.image.width, frame.image.height) == (1280, 960)
        assert frame.quality.sharpness and payload[:2] == b"\xff\xd8"
    finally:
        services.stop()
        receiver.close()


def start_ffmpeg(image: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(FFMPEG), "-hide_banner", "-loglevel", "error", "-re", "-loop", "1", "-i",
         str(image), "-vf", "fps=5", "-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts",
         f"tcp://127.0.0.1:{port}?listen=1"], stdin=subprocess.DEVNULL)


@pytest.mark.slow
@pytest.mark.skipif(FFMPEG is None, reason="Debian ffmpeg not installed (make setup)")
def test_network_stream_disconnects_and_recovers(tmp_path: Path, run_dir: Path) -> None:
    image = tmp_path / "plate.png"
    cv2.imwrite(str(image), cv2.cvtColor(plate(), cv2.COLOR_RGB2BGR))
    port = free_port()
    server = start_ffmpeg(image, port)
    time.sleep(0.5)
    config = camera_config(tmp_path, run_dir, f'[[stations]]\nid = "net"\nsource = "opencv"\n'
                           f'uri = "tcp://127.0.0.1:{port}"\nrate_hz = 4.0\n'
                           "reconnect_max_s = 1.0\n")
    receiver = FrameReceiver(f"ipc://{run_dir}/frames.sock")
    services = Services(config, tmp_path / "logs")
    try:
        services.start("camera", "camera", "--station", "net")
        acks = f"ipc://{run_dir}/control-net.sock"
        assert len(frames_from(receiver, 2, 60, acks)) == 2
        server.kill()
        server.wait()
        wait_for(lambda: (s := read_status(run_dir, "camera-net")) and
                 s["source_state"] == "disconnected", 30, "the station to report disconnected")
        server = start_ffmpeg(image, port)
        restarted = time.monotonic()
        got = frames_from(receiver, 1, 20, acks)
        assert got, services.log("camera")
        assert time.monotonic() - restarted < 5.0
        status = wait_for(lambda: (s := read_status(run_dir, "camera-net")) and
                          s["source_state"] == "connected" and s, 10, "connected again")
        assert status["reconnects"] >= 1  # type: ignore[index]
        assert services.procs["camera"].poll() is None  # recovered without a restart
    finally:
        services.stop()
        server.kill()
        receiver.close()


@pytest.mark.slow
def test_trigger_and_reshoot_round_trip(tmp_path: Path, run_dir: Path) -> None:
    config = camera_config(tmp_path, run_dir, '[[stations]]\nid = "st"\nsource = "synthetic"\n'
                           'trigger = "external"\nburst = 3\n')
    receiver = FrameReceiver(f"ipc://{run_dir}/frames.sock")
    services = Services(config, tmp_path / "logs")
    control = Sender(f"ipc://{run_dir}/control-st.sock")
    try:
        services.start("camera", "camera", "--station", "st")
        wait_for(lambda: read_status(run_dir, "camera-st"), 60, "the camera to start")
        assert frames_from(receiver, 1, 2) == []  # external trigger: nothing on its own
        assert control.send(TriggerCommand(station="st"), timeout_ms=5000)
        first, _ = frames_from(receiver, 1, 30)[0]
        assert first.attempt == 0 and first.unit_id
        assert control.send(ReshootCommand(station="st", inspection_id=first.inspection_id,
                                           unit_id=first.unit_id, attempt=1,
                                           reason=ReshootReason.GLARE), timeout_ms=5000)
        again, _ = frames_from(receiver, 1, 30)[0]
        assert again.inspection_id == first.inspection_id
        assert again.unit_id == first.unit_id
        assert again.attempt == 1 and again.reshoot_reason is ReshootReason.GLARE
        assert again.frame_id != first.frame_id
    finally:
        control.close()
        services.stop()
        receiver.close()


@pytest.mark.slow
def test_bad_source_url_is_reported_and_retried(tmp_path: Path, run_dir: Path) -> None:
    port = free_port()  # nothing listens here
    config = camera_config(tmp_path, run_dir, f'[[stations]]\nid = "bad"\nsource = "opencv"\n'
                           f'uri = "tcp://127.0.0.1:{port}"\nreconnect_max_s = 0.5\n')
    services = Services(config, tmp_path / "logs")
    try:
        proc = services.start("camera", "camera", "--station", "bad")
        status = wait_for(lambda: (s := read_status(run_dir, "camera-bad")) and
                          s["source_state"] == "disconnected" and s, 60, "disconnected state")
        assert f"127.0.0.1:{port}" in str(status["error"])  # type: ignore[index]
        time.sleep(3)
        assert proc.poll() is None
        assert f"cannot open video source 'tcp://127.0.0.1:{port}'" in services.log("camera")
    finally:
        services.stop()


@pytest.mark.slow
def test_triggered_frame_waits_for_inference_and_is_stored_once(tmp_path: Path,
                                                                 run_dir: Path) -> None:
    """No inference process yet: the triggered frame waits in the camera's journal (and is
    re-sent), then is stored exactly once when inference comes up, and forgotten on the ack."""
    config = camera_config(tmp_path, run_dir, '[[stations]]\nid = "st"\nsource = "synthetic"\n'
                           'trigger = "external"\nredeliver_s = 1.0\n')
    services = Services(config, tmp_path / "logs")
    control = Sender(f"ipc://{run_dir}/control-st.sock")
    db = tmp_path / "data" / "appliance.db"
    try:
        services.start("record", "record")
        services.start("camera", "camera", "--station", "st")
        wait_for(lambda: read_status(run_dir, "camera-st"), 60, "the camera to start")
        assert control.send(TriggerCommand(station="st"), timeout_ms=5000)
        waiting = wait_for(lambda: (s := read_status(run_dir, "camera-st")) and
                           s["pending"] == 1 and s, 20, "the frame to wait in the journal")
        assert waiting["captured_total"] == 1  # type: ignore[index]
        time.sleep(2)
        services.start("infer", "infer")

        def stored() -> int | None:
            import sqlite3

            if not db.exists():
                return None
            with sqlite3.connect(db) as conn:
                n = conn.execute("SELECT COUNT(*) FROM attempts WHERE attempt = 0").fetchone()[0]
            return n or None

        assert wait_for(stored, 120, "the inspection to be stored") == 1
        done = wait_for(lambda: (s := read_status(run_dir, "camera-st")) and
                        s["pending"] == 0 and s, 20, "the acknowledgement")
        assert done["acknowledged_total"] >= 1  # type: ignore[index]
        time.sleep(2)
        assert stored() == 1  # re-deliveries (if any) were not stored twice
    finally:
        control.close()
        services.stop()


@pytest.mark.slow
def test_panel_trigger_and_metrics(tmp_path: Path, run_dir: Path) -> None:
    import json
    import urllib.request

    port = free_port()
    config = write_config(tmp_path, run_dir=run_dir, port=port,
                          stations='[[stations]]\nid = "st"\nsource = "synthetic"\n'
                                   'trigger = "external"\n')
    receiver = FrameReceiver(f"ipc://{run_dir}/frames.sock")
    services = Services(config, tmp_path / "logs")
    base = f"http://127.0.0.1:{port}"
    try:
        services.start("camera", "camera", "--station", "st")
        services.start("panel", "panel")
        wait_for(lambda: read_status(run_dir, "camera-st"), 60, "the camera to start")

        def post(url: str) -> dict[str, object] | None:
            try:
                request = urllib.request.Request(url, method="POST")
                with urllib.request.urlopen(request, timeout=5) as response:
                    data: dict[str, object] = json.loads(response.read())
                    return data
            except OSError:
                return None

        assert wait_for(lambda: post(f"{base}/api/v1/stations/st/trigger"), 60, "the panel")
        frame, _ = frames_from(receiver, 1, 30)[0]
        assert frame.station == "st"

        def metrics() -> str | None:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                text = response.read().decode()
            return text if 'nameplate_station_captured_total{station="st"} 1.0' in text else None

        text = wait_for(metrics, 30, "the frame to show in /metrics")
        assert 'nameplate_station_connected{station="st"} 1.0' in str(text)
        assert "# HELP nameplate_station_drops_total" in str(text)
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/api/v1/stations/nope/trigger", method="POST"), timeout=5)
            raise AssertionError("unknown station accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 404
    finally:
        services.stop()
        receiver.close()


def test_glare_reshoot_prefers_the_frame_with_least_glare() -> None:
    from camera.responses import response_for
    from camera.selection import select_frame

    clean = plate()
    glared = clean.copy()
    glared[200:500, 300:900] = 255  # a saturated highlight over the fields
    sharper_glared = cv2.addWeighted(glared, 1.6, cv2.GaussianBlur(glared, (0, 0), 2), -0.6, 0)
    frames = [sharper_glared, cv2.GaussianBlur(clean, (0, 0), 0.8), glared]
    assert select_frame(frames, response_for(ReshootReason.GLARE).keep) == 1
    assert select_frame(frames, response_for(None).keep) == 0  # otherwise the sharpest
    assert select_frame(frames, response_for(ReshootReason.BLUR).keep) == 0


def test_every_reshoot_reason_has_a_camera_response() -> None:
    from camera.responses import RESPONSES, response_for

    assert set(RESPONSES) == set(ReshootReason)
    glare, dark, blur = (response_for(r) for r in (ReshootReason.GLARE, ReshootReason.DARK,
                                                   ReshootReason.BLUR))
    assert glare.exposure_factor < 1 and glare.keep == "least_glare"
    assert dark.exposure_factor > 1 and dark.gain_step > 0      # the branch that never fired
    assert blur.exposure_factor < 1 and blur.burst > 3
    assert response_for(None, burst=5).burst == 5
    assert all(response_for(r).burst >= 3 for r in ReshootReason)  # a reshoot takes a burst


class _FakeCapture:
    """Stands in for cv2.VideoCapture's property interface (a device is not available)."""

    def __init__(self) -> None:
        self.props = {cv2.CAP_PROP_EXPOSURE: 100.0, cv2.CAP_PROP_GAIN: 2.0}

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True


def test_opencv_source_applies_the_response() -> None:
    from camera.responses import response_for
    from camera.sources import OpenCVSource

    source = OpenCVSource.__new__(OpenCVSource)
    source.cap = _FakeCapture()  # type: ignore[assignment]
    assert source.adjust_for(response_for(ReshootReason.GLARE))
    assert source.cap.get(cv2.CAP_PROP_EXPOSURE) == 50.0
    assert source.adjust_for(response_for(ReshootReason.DARK))
    assert source.cap.get(cv2.CAP_PROP_EXPOSURE) == 100.0
    assert source.cap.get(cv2.CAP_PROP_GAIN) == 6.0
    assert not source.adjust_for(response_for(ReshootReason.UNSURE))
