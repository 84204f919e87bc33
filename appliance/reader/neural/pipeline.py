"""The trained reader: detect text runs, rectify them, read them all in one batch, attach
them to schema fields, and judge the frame's quality. Also verify mode."""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import VisionEncoderDecoderModel

from appliance.geometry import padded_quad, quad_box, rectify_quad
from appliance.reader.base import PlateReading
from appliance.reader.fields import Line, Word, assign_fields, group_lines
from appliance.reader.neural.detector import TextDetector, letterbox, segments_from_maps
from appliance.reader.neural.recognizer import (
    MAX_WIDTH,
    STRIDE,
    LineReading,
    ctc_greedy,
    ctc_score,
    prepare_lines,
)
from appliance.reader.neural.vocab import EOS_ID, CharVocab
from appliance.reader.quality import assess
from appliance.reader.timing import stage
from appliance.schema import PlateSchema
from appliance.transport.messages import FieldValue

DEFAULT_MODEL = Path(__file__).resolve().parents[3] / "models" / "nameplate-reader"
CROP_PAD = 0.12
SURE = 0.9        # CTC lines below this confidence get a second opinion from generate


class ModelNotFound(FileNotFoundError):
    """The reader's weights are not where the configuration says."""


@dataclass
class FrameAnalysis:
    """Everything the reader found in one frame (kept for verify mode and evidence)."""

    quads: list[np.ndarray]
    plate: np.ndarray | None
    lines: list[LineReading]
    log_probs: torch.Tensor | None
    widths: list[int]
    crops: list[np.ndarray]  # the rectified text runs, in the order of ``quads``
    words: list[Word] = field(default_factory=list)


class NeuralReader:
    """The project's own reader (``backend = "neural"``)."""

    name = "neural"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu",
                 model_dir: Path | str | None = None, max_new_tokens: int = 48,
                 decode: str = "auto", **_: object) -> None:
        folder = Path(model_dir) if model_dir else DEFAULT_MODEL
        if not (folder / "recognizer" / "config.json").is_file():
            raise ModelNotFound(f"{folder}: no trained reader here (expected recognizer/ and "
                                "detector/ from `nameplate train`)")
        self.schema = schema
        self.device = device
        self.decode = decode
        self.max_new_tokens = max_new_tokens
        self.vocab = CharVocab.load(folder / "recognizer")
        dtype = torch.float16 if device == "cuda" else torch.float32
        # weights ship in fp16; the small detector runs in fp32 everywhere
        detector: Any = TextDetector.from_pretrained(folder / "detector")
        self.detector = detector.to(device, dtype=torch.float32).eval()
        recognizer: Any = VisionEncoderDecoderModel.from_pretrained(folder / "recognizer")
        self.recognizer = recognizer.to(device, dtype=dtype).eval()
        self.dtype = dtype
        self.input_w = int(self.detector.config.input_width)
        self.input_h = int(self.detector.config.input_height)
        #: milliseconds per stage, summed since last cleared; None (the default) times nothing
        self.stage_ms: dict[str, float] | None = None

    def _stage(self, name: str) -> AbstractContextManager[None]:
        return stage(self.stage_ms, name, self.device)

    # -- public interface ----------------------------------------------------------------
    def read(self, images: Sequence[np.ndarray]) -> list[PlateReading]:
        """Read a batch of RGB frames."""
        analyses = self.analyse(images)
        with self._stage("fields+quality"):
            return [self._reading(image, analysis)
                    for image, analysis in zip(images, analyses, strict=True)]

    @torch.inference_mode()
    def analyse(self, images: Sequence[np.ndarray]) -> list[FrameAnalysis]:
        """Detect and read every text run of every frame (one detector and one encoder pass)."""
        if not images:
            return []
        detections = self._detect(images)
        crops: list[np.ndarray] = []
        owners: list[int] = []
        with self._stage("rectify"):
            for index, (image, (quads, _)) in enumerate(zip(images, detections, strict=True)):
                for quad in quads:
                    crops.append(rectify_quad(image, quad, pad=CROP_PAD))
                    owners.append(index)
        lines, log_probs, widths = self._recognise(crops)
        analyses = []
        for index, (quads, plate) in enumerate(detections):
            mine = [i for i, owner in enumerate(owners) if owner == index]
            analysis = FrameAnalysis(
                quads=[quads[k] for k in range(len(quads))], plate=plate,
                lines=[lines[i] for i in mine],
                log_probs=log_probs[mine] if log_probs is not None and mine else None,
                widths=[widths[i] for i in mine],
                crops=[crops[i] for i in mine])
            with self._stage("orient"):
                self._orient(images[index], analysis)
            if self.decode in ("auto", "generate"):
                with self._stage("generate"):
                    self._second_opinion(analysis)
            analysis.words = self._words(analysis)
            analyses.append(analysis)
        return analyses

    def verify(self, image: np.ndarray, expected: dict[str, str]) -> dict[str, dict[str, object]]:
        """Score each expected value under the model: verified / differs / unreadable."""
        analysis = self.analyse([image])[0]
        reading = self._reading(image, analysis)
        results: dict[str, dict[str, object]] = {}
        for name, want in expected.items():
            got = reading.fields.get(name)
            results[name] = self._verify_field(analysis, got, want)
        return results

    # -- stages --------------------------------------------------------------------------
    def _detect(self, images: Sequence[np.ndarray],
                ) -> list[tuple[list[np.ndarray], np.ndarray | None]]:
        with self._stage("letterbox"):
            inputs = [letterbox(image, self.input_w, self.input_h) for image in images]
            scales = [scale for _, scale in inputs]
            pixels = torch.from_numpy(np.stack([p for p, _ in inputs])).to(self.device)
        with self._stage("detector"):
            logits = self.detector(pixel_values=pixels)["logits"]
            probs = torch.sigmoid(logits).float().cpu().numpy()
        with self._stage("segments"):
            return [segments_from_maps(p[0], p[1], scale=s)
                    for p, s in zip(probs, scales, strict=True)]

    def _recognise(self, crops: list[np.ndarray],
                   ) -> tuple[list[LineReading], torch.Tensor | None, list[int]]:
        if not crops:
            return [], None, []
        # One batch padded to the longest run: the model trained on batches padded that way
        # (reading runs in groups of similar width cost 1.5 points on the dev set).
        with self._stage("prepare lines"):
            pixels = prepare_lines(crops).to(self.device, dtype=self.dtype)
        with self._stage("encoder"):
            hidden = self.recognizer.encoder(pixel_values=pixels).last_hidden_state
            logits = self.recognizer.encoder.ctc_logits(hidden).float()
            log_probs = torch.log_softmax(logits, -1).cpu()
        with self._stage("ctc decode"):
            widths = [min(log_probs.shape[1], max(1, min(c.shape[1], MAX_WIDTH) // STRIDE))
                      for c in crops]
            return ctc_greedy(log_probs, self.vocab, widths), log_probs, widths

    def _orient(self, image: np.ndarray, analysis: FrameAnalysis) -> None:
        """Turn the plate's text runs 180° when that reads with more confidence (tried on
        the four longest runs first; all of them are read again only if that looks better)."""
        if not analysis.lines:
            return
        mean = float(np.mean([ln.confidence for ln in analysis.lines]))
        if mean >= 0.85:
            return
        longest = sorted(range(len(analysis.quads)), reverse=True,
                         key=lambda i: float(np.linalg.norm(analysis.quads[i][1]
                                                            - analysis.quads[i][0])))[:4]
        if len(longest) < len(analysis.quads):
            probe = [rectify_quad(image, analysis.quads[i][[2, 3, 0, 1]], pad=CROP_PAD)
                     for i in longest]
            upright = float(np.mean([analysis.lines[i].confidence for i in longest]))
            if float(np.mean([ln.confidence for ln in self._recognise(probe)[0]])) \
                    <= upright + 0.15:
                return
        flipped = [q[[2, 3, 0, 1]] for q in analysis.quads]
        crops = [rectify_quad(image, q, pad=CROP_PAD) for q in flipped]
        lines, log_probs, widths = self._recognise(crops)
        if float(np.mean([ln.confidence for ln in lines])) > mean + 0.15:  # clearly better only
            analysis.quads, analysis.lines = flipped, lines
            analysis.log_probs, analysis.widths = log_probs, widths
            analysis.crops = crops

    def _second_opinion(self, analysis: FrameAnalysis) -> None:
        """Read unsure lines again with the attention decoder (``generate``, capped)."""
        unsure = [i for i, ln in enumerate(analysis.lines)
                  if self.decode == "generate" or ln.confidence < SURE]
        if not unsure:
            return
        pixels = prepare_lines([analysis.crops[i] for i in unsure]).to(self.device,
                                                                      dtype=self.dtype)
        out = self.recognizer.generate(pixel_values=pixels, max_new_tokens=self.max_new_tokens,
                                       do_sample=False, num_beams=1, output_scores=True,
                                       return_dict_in_generate=True)
        scores = self.recognizer.compute_transition_scores(out.sequences, out.scores,
                                                           normalize_logits=True)
        for row, i in enumerate(unsure):
            tokens = out.sequences[row, 1:].tolist()
            probs = scores[row].exp().tolist()
            if EOS_ID not in tokens:
                continue  # hit the cap without finishing: treat as not read
            end = tokens.index(EOS_ID)
            text = self.vocab.decode(tokens[:end])
            conf = min(probs[: end + 1]) if end + 1 <= len(probs) else 0.0
            line = analysis.lines[i]
            if text == line.text:
                line.char_conf = [max(c, conf) for c in line.char_conf]
            elif conf > line.confidence and len(text) > 0:
                # generate wins: keep CTC's positions only when the lengths agree
                positions = line.char_pos if len(line.char_pos) == len(text) else \
                    list(np.linspace(0, max(1, line.width - 1), len(text)).astype(int))
                analysis.lines[i] = LineReading(text, [conf] * len(text), positions, line.width)

    def _words(self, analysis: FrameAnalysis) -> list[Word]:
        words = []
        angles = [np.arctan2(*(q[1] - q[0])[::-1]) for q in analysis.quads]
        angle = float(np.median(angles)) if angles else 0.0
        rot = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
        for quad, line, crop in zip(analysis.quads, analysis.lines, analysis.crops, strict=True):
            text = line.text.strip()
            if not text:
                continue
            lead = len(line.text) - len(line.text.lstrip())
            upright = quad @ rot.T  # line grouping happens in the plate's own frame
            box = (int(upright[:, 0].min()), int(upright[:, 1].min()),
                   int(upright[:, 0].max()), int(upright[:, 1].max()))
            seen_w = max(1, min(crop.shape[1], MAX_WIDTH))  # wider crops were squeezed
            xs = [(p * STRIDE + STRIDE / 2) / seen_w for p in line.char_pos]
            xs = xs[lead: lead + len(text)]
            confs = line.char_conf[lead: lead + len(text)]
            words.append(Word(text, box, line.confidence, quad=padded_quad(quad, CROP_PAD),
                              char_x=xs, char_conf=confs))
        return words

    def _reading(self, image: np.ndarray, analysis: FrameAnalysis) -> PlateReading:
        lines: list[Line] = group_lines(analysis.words)
        fields = assign_fields(lines, self.schema)
        heights = [float(np.linalg.norm(q[3] - q[0])) for q in analysis.quads]
        issues = assess(image, plate=analysis.plate, text_heights=heights,
                        field_boxes={n: f.box for n, f in fields.items()},
                        text_quads=analysis.quads)
        return PlateReading(fields, extra={"quality": issues,
                                           "lines": [w.text for w in analysis.words]})

    def _verify_field(self, analysis: FrameAnalysis, got: FieldValue | None,
                      want: str) -> dict[str, object]:
        if analysis.log_probs is None:
            return {"status": "unreadable", "read": None, "confidence": 0.0, "box": None}
        norm = re.sub(r"\s+", "", want).casefold()
        if got is not None and got.value is not None and \
                re.sub(r"\s+", "", got.value).casefold() == norm:
            return {"status": "verified", "read": got.value,
                    "confidence": got.confidence, "box": got.box}
        # Score the expected string in every text run, alone and in place of what was read.
        candidates: list[tuple[int, str]] = []
        for i, line in enumerate(analysis.lines):
            candidates.append((i, want))
            if got is not None and got.value and got.value in line.text:
                candidates.append((i, line.text.replace(got.value, want, 1)))
            candidates.append((i, line.text))
        scores = ctc_score(analysis.log_probs, analysis.widths, candidates, self.vocab)
        own = {i: score for (i, text), score in zip(candidates, scores, strict=True)
               if text == analysis.lines[i].text}
        best_gain, best_line = -1e9, -1
        for (i, text), score in zip(candidates, scores, strict=True):
            if text == analysis.lines[i].text:
                continue
            gain = score - own[i]
            if gain > best_gain:
                best_gain, best_line = gain, i
        box = quad_box(analysis.quads[best_line]) if best_line >= 0 else None
        if best_gain >= 0:  # the expected text is at least as likely as what was read
            confidence = float(1 / (1 + np.exp(-best_gain)))
            return {"status": "verified", "read": want, "confidence": confidence, "box": box}
        if got is not None and got.value is not None:
            return {"status": "differs", "read": got.value, "confidence": got.confidence,
                    "box": got.box}
        return {"status": "unreadable", "read": None, "confidence": 0.0, "box": box}

