"""The pretrained reader (``backend = "ppocr"``): PP-OCR's detector and CTC recogniser ported
to torch, then the schema's field attachment and the quality gate.

One detector pass per batch of frames, one orientation vote per frame (the longest runs read
both ways), every text run of every frame recognised in width-bucketed batches. Verify mode
scores expected values under the recogniser's CTC distribution instead of comparing strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from appliance.geometry import quad_box, rectify_quad, upright_boxes
from appliance.reader.base import PlateReading
from appliance.reader.calibration import load_for
from appliance.reader.fields import assign_fields
from appliance.reader.lines import Line, Word, group_lines
from appliance.reader.ppocr.detect import (
    DetectorSettings,
    detect_quads,
    detector_input,
    stack_inputs,
    usual_frame_input,
)
from appliance.reader.ppocr.modeling import PPOCRConfig
from appliance.reader.ppocr.netclient import Endpoint, RemoteNetworks
from appliance.reader.ppocr.netserver import NetworkServer
from appliance.reader.ppocr.networks import LocalNetworks, Networks
from appliance.reader.ppocr.recognise import (
    HEIGHT,
    MAX_WIDTH,
    STRIDE,
    Charset,
    LineReading,
    batches,
    ctc_greedy,
    line_pixels,
    stretched,
)
from appliance.reader.ppocr.verify import STRETCH, second_look, value_runs, verify_field
from appliance.reader.quality import field_issues, plate_issues
from appliance.reader.timing import stage
from appliance.runtime import keep_freed_memory
from appliance.schema import PlateSchema
from appliance.transport.messages import QualityIssue

DEFAULT_MODEL = Path(__file__).resolve().parents[3] / "models" / "ppocr-reader"
ORIENT_LINES = 4          # longest runs that vote on a frame's 0°/180°
ORIENT_SURE = 0.8         # mean run confidence above which a frame is not checked
# a detected line's box against its capital height: median 1.70 on 40 station and 1.84 on
# 40 dev frames of seed 2026 against the renderer's capital height, at unclip 1.2 (at 1.6
# it was 1.98 and 2.16; sessions 10 and 13)
BOX_PER_CAPITAL = 1.7


#: the detector's longest side on a GPU or with compiled networks (960 on a CPU without)
COMPILED_LIMIT = 1280


def default_limit(device: str, limit: int | None = None, *, compiled: bool = False) -> int:
    """The detector's longest side: ``limit`` when given, else 1280 px on a GPU or with
    compiled networks, 960 on a CPU without (where 1280 costs a third more time and each
    step down more than a point of values; docs/benchmarks.md)."""
    return int(limit or (COMPILED_LIMIT if device == "cuda" or compiled else 960))


class ModelNotFound(FileNotFoundError):
    """The reader's weights are not where the configuration says."""


@dataclass
class FrameAnalysis:
    """Everything the reader found in one frame (kept for verify mode and evidence)."""

    quads: list[np.ndarray]
    crops: list[np.ndarray]
    lines: list[LineReading] = field(default_factory=list)
    log_probs: list[torch.Tensor] = field(default_factory=list)  # T×K per line
    flipped: bool = False
    words: list[Word] = field(default_factory=list)
    #: the plate's quality measured beside the recogniser (None: measured with the fields)
    plate_check: Future[list[QualityIssue]] | None = None

    def plate(self) -> np.ndarray | None:
        """The plate's outline as seen through its text: the rectangle around every run,
        grown by one text height (None when no text was found)."""
        if not self.quads:
            return None
        points = np.concatenate(self.quads).astype(np.float32)
        (cx, cy), (w, h), angle = cv2.minAreaRect(points)
        grow = float(np.median([np.linalg.norm(q[3] - q[0]) for q in self.quads]))
        return cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), angle)).astype(np.float32)


class PPOCRReader:
    """PP-OCR-based reader; see the module docstring."""

    name = "ppocr"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu",
                 model_dir: Path | str | None = None, detector_limit: int | None = None,
                 cuda_graphs: bool = True, compile_networks: bool = False,
                 served: Endpoint | None = None, quality_beside: bool | None = None,
                 **_: object) -> None:
        folder = Path(model_dir) if model_dir else DEFAULT_MODEL
        for part in ("detector", "recognizer"):
            if not (folder / part / "config.json").is_file():
                raise ModelNotFound(f"{folder}: no {part}/ here (expected detector/ and "
                                    "recognizer/ model folders)")
        self.schema = schema
        #: raw field scores → measured probability of a right value (None: raw scores)
        self.calibration = load_for(folder)
        networks: Networks
        if served is None:  # the networks in this process
            if device == "cpu":  # network passes reuse their memory: 2x faster detector
                keep_freed_memory()  # on a CPU; no gain on an H100 host (benchmarks.md)
            local = LocalNetworks.load(folder, device=device, cuda_graphs=cuda_graphs,
                                       compiled=compile_networks)
            self.charset = local.charset
            networks = local
        else:  # served by another process (netserver): only the character set is needed
            self.charset = Charset(list(PPOCRConfig.from_pretrained(
                folder / "recognizer").charset))
            networks = RemoteNetworks(served)
        self.networks = networks
        self.device = networks.device
        compiled = isinstance(networks, LocalNetworks) and bool(networks.compiled)
        self.settings = DetectorSettings(limit=default_limit(self.device, detector_limit,
                                                             compiled=compiled))
        self._recent: list[tuple[np.ndarray, FrameAnalysis, PlateReading]] = []
        #: frames sent through the networks together (None: the whole batch). On a GPU one:
        #: on an H100 batches of 8 and 32 read no more frames per second than single frames
        #: (23.5 and 29.7 against 31.2) but reserved 27 and 61 GB of GPU memory against 5.7
        #: (CUDA graphs of every shape), and a frame's reading varied with its neighbours
        #: (lines share the recogniser's padded batches). docs/benchmarks.md. A served
        #: reader sends its whole share at once: the server keeps its shapes few itself.
        self.frames_per_pass: int | None = 1 if isinstance(networks, LocalNetworks) \
            and self.device == "cuda" else None
        #: milliseconds per stage, summed since last cleared; None (the default) times nothing
        self.stage_ms: dict[str, float] | None = None
        #: where the plate's quality is measured while the networks run (``quality_beside``;
        #: by default on a GPU): a CPU thread that would wait on the recogniser anyway, and
        #: OpenCV lets go of the GIL. On a CPU the cores are busy with the networks: measured
        #: in line, after them.
        beside = self.device == "cuda" if quality_beside is None else quality_beside
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="plate-quality") \
            if beside else None
        if compiled and self.device == "cpu":
            self._compile_now()

    def _compile_now(self) -> None:
        """Compile the networks at load, not on the line's first frames: the detector on a
        4:3 camera frame at the detector's limit (another frame size compiles when it first
        comes), the recogniser on a line and on two (after which any row count and width
        runs compiled)."""
        assert isinstance(self.networks, LocalNetworks)
        height, width = usual_frame_input(self.settings.limit)
        self.networks.detect(torch.zeros((1, 3, height, width), dtype=torch.uint8))
        for rows, width in ((1, 128), (2, 128)):
            self.networks.recognise(torch.zeros((rows, HEIGHT, width, 3), dtype=torch.uint8),
                                    [width] * rows)

    @staticmethod
    def serve_networks(*, device: str, model_dir: Path | str | None = None,
                       detector_limit: int | None = None, cuda_graphs: bool = True,
                       compile_networks: bool = True, **_: object) -> NetworkServer:
        """Load the networks once here and serve them to reader workers (each made with
        ``served=server.attach()``); see :mod:`appliance.reader.ppocr.netserver`."""
        local = LocalNetworks.load(Path(model_dir) if model_dir else DEFAULT_MODEL,
                                   device=device, cuda_graphs=cuda_graphs,
                                   compiled=compile_networks and device == "cuda")
        return NetworkServer(local, max_side=default_limit(device, detector_limit))

    def _stage(self, name: str) -> AbstractContextManager[None]:
        # a served reader never touches the GPU itself: no synchronising
        device = self.device if isinstance(self.networks, LocalNetworks) else "cpu"
        return stage(self.stage_ms, name, device)

    # -- public interface ----------------------------------------------------------------
    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read a batch of RGB frames; one reading per frame, in order (``frames_per_pass``
        at a time through the networks)."""
        step = self.frames_per_pass or max(1, len(images))
        recent: list[tuple[np.ndarray, FrameAnalysis, PlateReading]] = []
        for start in range(0, len(images), step):
            group = images[start:start + step]
            analyses = self.analyse(group)
            with self._stage("fields+quality"):
                recent += [(image, analysis, self._reading(image, analysis))
                           for image, analysis in zip(group, analyses, strict=True)]
        # verify on a frame of this batch reuses its analysis instead of reading it again
        self._recent = recent
        return [reading for _, _, reading in recent]

    @torch.inference_mode()
    def analyse(self, images: Sequence[np.ndarray]) -> list[FrameAnalysis]:
        """Detect, orient and recognise every text run of every frame."""
        if not images:
            return []
        analyses = []
        for image, quads in zip(images, self._detect(images), strict=True):
            analysis = FrameAnalysis(quads, [])
            if self._beside is not None:
                analysis.plate_check = self._beside.submit(
                    plate_issues, image, plate=analysis.plate(), text_heights=_heights(quads),
                    text_quads=list(quads))
            with self._stage("rectify"):
                analysis.crops = [rectify_quad(image, q, height=HEIGHT, pad=0.0,
                                               max_width=MAX_WIDTH) for q in quads]
            analyses.append(analysis)
        self._recognise(analyses)
        with self._stage("orient"):
            self._orient(analyses)
        for analysis in analyses:
            analysis.words = self._words(analysis)
        return analyses

    def verify(self, image: np.ndarray, expected: dict[str, str]) -> dict[str, dict[str, object]]:
        """Score each expected value under the recogniser: verified / differs / unreadable.

        A frame of the last ``read`` batch (the same array) is not read again."""
        known = next(((a, r) for im, a, r in self._recent if im is image), None)
        if known is None:
            analysis = self.analyse([image])[0]
            reading = self._reading(image, analysis)
        else:
            analysis, reading = known
        return self.verify_reading(analysis, reading, expected)

    def verify_reading(self, analysis: FrameAnalysis, reading: PlateReading,
                       expected: dict[str, str]) -> dict[str, dict[str, object]]:
        """:meth:`verify` on a frame already analysed and read. A value not verified at
        first gets a second look: its runs read again stretched (``verify.STRETCH``)."""
        def check(lines: list[LineReading], log_probs: list[torch.Tensor], name: str,
                  ) -> dict[str, object]:
            return verify_field(lines, log_probs, analysis.quads, reading.fields.get(name),
                                expected[name], self.charset, self.schema, field=name)

        seen = {name: check(analysis.lines, analysis.log_probs, name) for name in expected}
        doubtful = {name: value_runs(analysis.lines, analysis.quads, expected[name],
                                     self.schema)
                    for name, result in seen.items()
                    if result["status"] != "verified" and result.get("margin") is not None}
        runs = sorted({i for found in doubtful.values() for i in found})
        if not runs:
            return seen
        with self._stage("verify again"):
            again, again_log_probs = self._read_lines([stretched(analysis.crops[i], STRETCH)
                                                       for i in runs])
        lines, log_probs = list(analysis.lines), list(analysis.log_probs)
        for k, i in enumerate(runs):
            lines[i], log_probs[i] = again[k], again_log_probs[k]
        for name in doubtful:
            seen[name] = second_look(seen[name], check(lines, log_probs, name), expected[name])
        return seen

    # -- stages --------------------------------------------------------------------------
    def _detect(self, images: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        with self._stage("detector input"):
            inputs = [detector_input(image, self.settings.limit) for image in images]
            pixels = stack_inputs([p for p, _, _ in inputs])
        with self._stage("detector"):
            probs = self.networks.detect(pixels)
        with self._stage("boxes"):
            out = []
            for prob, (array, sx, sy) in zip(probs, inputs, strict=True):
                prob = prob[: array.shape[0], : array.shape[1]]
                out.append(detect_quads(prob, sx, sy, self.settings))
            return out

    def _orient(self, analyses: list[FrameAnalysis]) -> None:
        """Turn a frame's runs 180° when its longest runs read better that way.

        Frames read with confidence are left alone. For the others the longest runs are read
        turned, and the frame is turned when their mean character confidence is higher that
        way. (Measured on 100 station frames, each upright and upside down: this vote made
        no error; the 0°/180° classifier, or the least confident character of each run,
        misjudged 8 of the 200; 60 frames of a fresh seed: 1 of 120 for both.) A turned
        frame is read again."""
        probes: list[tuple[int, int]] = []  # (frame, run)
        for index, analysis in enumerate(analyses):
            if not analysis.lines or np.mean([ln.confidence for ln in analysis.lines]) \
                    >= ORIENT_SURE:
                continue
            longest = sorted(range(len(analysis.crops)), reverse=True,
                             key=lambda i: analysis.crops[i].shape[1])[:ORIENT_LINES]
            probes.extend((index, i) for i in longest)
        if not probes:
            return
        turned_crops = [np.ascontiguousarray(analyses[a].crops[i][::-1, ::-1])
                        for a, i in probes]
        turned_lines = self._read_lines(turned_crops)[0]
        redo = []
        for index, analysis in enumerate(analyses):
            mine = [k for k, (owner, _) in enumerate(probes) if owner == index]
            if not mine:
                continue
            upright = _mean_char_confidence([analysis.lines[probes[k][1]] for k in mine])
            turned = _mean_char_confidence([turned_lines[k] for k in mine])
            if turned > upright:
                analysis.flipped = True
                analysis.quads = [q[[2, 3, 0, 1]] for q in analysis.quads]
                analysis.crops = [np.ascontiguousarray(c[::-1, ::-1]) for c in analysis.crops]
                analysis.lines, analysis.log_probs = [], []
                redo.append(analysis)
        if redo:
            self._recognise(redo)

    def _read_lines(self, crops: list[np.ndarray],
                    ) -> tuple[list[LineReading], list[torch.Tensor]]:
        """Recognise rectified crops (width-bucketed batches); readings and T×K log-probs."""
        lines = [line_pixels(crop) for crop in crops]
        readings: list[LineReading | None] = [None] * len(lines)
        log_probs: list[torch.Tensor | None] = [None] * len(lines)
        gpu = self.device == "cuda"
        outputs = [(members, self.networks.recognise(pixels, widths))
                   for members, pixels, widths in batches(
                       lines, fixed_shapes=gpu, max_pixels=HEIGHT * 1024 * (128 if gpu else 20))]
        for members, lp in outputs:  # best paths found on the device, decoded on the CPU
            lp = lp[: len(members)]  # without the blank padding rows
            widths = [min(lp.shape[1], max(1, math.ceil(lines[i].shape[1] / STRIDE)))
                      for i in members]
            decoded = ctc_greedy(lp, self.charset, widths)
            lp = lp.cpu()  # kept for verify
            for row, (i, line) in enumerate(zip(members, decoded, strict=True)):
                readings[i] = line
                log_probs[i] = lp[row, : widths[row]]
        return readings, log_probs  # type: ignore[return-value]

    def _recognise(self, analyses: list[FrameAnalysis]) -> None:
        owners = [(a, i) for a, analysis in enumerate(analyses)
                  for i in range(len(analysis.crops))]
        if not owners:
            return
        with self._stage("recognizer"):
            readings, log_probs = self._read_lines([analyses[a].crops[i] for a, i in owners])
        for k, (a, _) in enumerate(owners):
            analyses[a].lines.append(readings[k])
            analyses[a].log_probs.append(log_probs[k])

    @staticmethod
    def _words(analysis: FrameAnalysis) -> list[Word]:
        words = []
        boxes = upright_boxes(analysis.quads)  # line grouping happens in the plate's frame
        for quad, box, line, crop in zip(analysis.quads, boxes, analysis.lines, analysis.crops,
                                         strict=True):
            text = line.text.strip()
            if not text:
                continue
            lead = len(line.text) - len(line.text.lstrip())
            seen_w = max(1, min(round(crop.shape[1] * HEIGHT / max(1, crop.shape[0])),
                                MAX_WIDTH))
            xs = [min(1.0, (p * STRIDE + STRIDE / 2) / seen_w) for p in line.char_pos]
            words.append(Word(text, box, line.confidence, quad=quad,
                              char_x=xs[lead: lead + len(text)],
                              char_conf=line.char_conf[lead: lead + len(text)]))
        return words

    def _reading(self, image: np.ndarray, analysis: FrameAnalysis) -> PlateReading:
        lines: list[Line] = group_lines(analysis.words)
        fields = assign_fields(lines, self.schema)
        if self.calibration is not None:
            for name, found in fields.items():
                if found.value is not None:
                    found.confidence = self.calibration.probability(self.schema.fields[name],
                                                                    found.confidence)
        heights = _heights(analysis.quads)
        plate = analysis.plate()
        issues = list(analysis.plate_check.result()) if analysis.plate_check is not None else \
            plate_issues(image, plate=plate, text_heights=heights, text_quads=analysis.quads)
        issues += field_issues(image, plate=plate, text_heights=heights,
                               field_boxes={n: f.box for n, f in fields.items()},
                               box_per_capital=BOX_PER_CAPITAL)
        return PlateReading(fields, extra={"quality": issues,
                                           "lines": [w.text for w in analysis.words],
                                           "boxes": [list(quad_box(q)) for q in analysis.quads]})


def _heights(quads: Sequence[np.ndarray]) -> list[float]:
    """Each text box's height (its left side), frame pixels."""
    return [float(np.linalg.norm(q[3] - q[0])) for q in quads]


def _mean_char_confidence(lines: Sequence[LineReading]) -> float:
    """The mean over runs of each run's mean character confidence (0 for an empty run)."""
    return float(np.mean([np.mean(line.char_conf) if line.char_conf else 0.0
                          for line in lines]))
