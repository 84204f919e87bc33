"""Line recognition with PP-OCR's CTC network: rectified text runs → text, per-character
confidence and position; plus CTC scoring of given strings (verify mode).

The pretrained recogniser knows thousands of CJK characters; plates do not carry them, so
decoding is restricted to an alphabet (Latin scripts, digits, punctuation, unit symbols):
a masked class can never be read, which removes a whole family of look-alike errors.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import cv2
import numpy as np
import torch

HEIGHT = 48
STRIDE = 8            # input pixels per CTC time step
BUCKET = 64           # line widths are padded up to a multiple of this
MAX_WIDTH = 1600      # wider runs are squeezed to this width

PLATE_ALPHABET = (
    string.ascii_letters + string.digits + string.punctuation + " "
    + "ÄÖÜäöüßÉÈÊËéèêëÀÂàâÇçÎÏîïÔôÙÛùûÑñÁÍÓÚáíóúÅåØøÆæŁłŚśŹźŻżĆćĘęĄąŃńŠšŽžČčŘřĚěŮů"
    + "°ΩμµφΦ±²³~×·Δ€£¥§")


@dataclass
class LineReading:
    """What CTC made of one line: text, per-character confidence and time step."""

    text: str
    char_conf: list[float]
    char_pos: list[int]      # CTC time step (× STRIDE input pixels) of each character
    width: int               # time steps covering the real (unpadded) line

    @property
    def confidence(self) -> float:
        """The least confident character (0 when nothing was read)."""
        return min(self.char_conf) if self.char_conf else 0.0


class Charset:
    """The recogniser's classes (index 0 is CTC's blank) and the decoding mask."""

    def __init__(self, classes: list[str], alphabet: str = PLATE_ALPHABET) -> None:
        self.classes = classes
        self.index = {c: i for i, c in enumerate(classes) if i > 0}
        allowed = [0, *sorted(self.index[c] for c in set(alphabet) if c in self.index)]
        self.allowed = torch.tensor(allowed)
        self._column = {c: k for k, c in enumerate(allowed)}  # class → masked column
        self._allowed_on: dict[torch.device, torch.Tensor] = {}

    def encode(self, text: str) -> list[int] | None:
        """Class indices of ``text``; None when a character is outside the alphabet."""
        ids = [self.index.get(c) for c in text]
        return None if any(i is None for i in ids) else ids  # type: ignore[return-value]

    def columns(self, text: str) -> list[int] | None:
        """``text`` as columns of the masked alphabet (what decoding and CTC scoring see);
        None when a character is outside the alphabet."""
        ids = self.encode(text)
        if ids is None or any(i not in self._column for i in ids):
            return None
        return [self._column[i] for i in ids]

    def allowed_on(self, device: torch.device) -> torch.Tensor:
        """The allowed classes' indices as a tensor on ``device`` (copied there once: a
        CUDA graph cannot copy from the host)."""
        index = self._allowed_on.get(device)
        if index is None:
            index = self._allowed_on[device] = self.allowed.to(device)
        return index

    def log_probs(self, model: torch.nn.Module, pixels: torch.Tensor, *,
                  classes: torch.Tensor | None = None) -> torch.Tensor:
        """B×T×K log-probabilities over the allowed classes only (column k is class
        ``allowed[k]``) of the recogniser ``model`` on ``pixels``; only those classes'
        logits are computed (119 of the output layer's 6,625 columns). ``classes``: what
        :meth:`allowed_on` gives for the pixels' device, when the caller holds it."""
        if classes is None:
            classes = self.allowed_on(pixels.device)
        logits = model(pixels, logits=True, classes=classes)["logits"]
        return torch.log_softmax(logits.float(), -1)


def line_pixels(crop: np.ndarray) -> np.ndarray:
    """A rectified RGB crop resized to the recogniser's height: 48×W×3 uint8 (W ≤ MAX_WIDTH)."""
    h, w = crop.shape[:2]
    width = max(STRIDE, min(MAX_WIDTH, round(w * HEIGHT / max(1, h))))
    return cv2.resize(crop, (width, HEIGHT), interpolation=cv2.INTER_AREA
                      if h > HEIGHT else cv2.INTER_LINEAR)


def stretched(crop: np.ndarray, factor: float) -> np.ndarray:
    """A run's crop ``factor`` times wider (at most MAX_WIDTH): more CTC steps a character."""
    width = min(MAX_WIDTH, max(crop.shape[1], round(crop.shape[1] * factor)))
    return cv2.resize(crop, (width, crop.shape[0]), interpolation=cv2.INTER_LINEAR)


def line_input(crop: np.ndarray) -> np.ndarray:
    """A rectified RGB crop → the recogniser's 3×48×W BGR input in -1..1 (W ≤ MAX_WIDTH),
    as :func:`network_input` makes it (training pads these itself)."""
    pixels = line_pixels(crop)
    return network_input(torch.from_numpy(pixels)[None], [pixels.shape[1]])[0].numpy()


def network_input(pixels: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """A B×48×W×3 uint8 RGB batch (on any device) → the B×3×48×W BGR input in -1..1 that
    :func:`line_input` gives, each row zero beyond its ``widths`` entry; channels-last."""
    x = pixels.flip(-1).permute(0, 3, 1, 2).float()
    x /= 255.0  # in place, same arithmetic as (x / 255 - 0.5) / 0.5
    x -= 0.5
    x /= 0.5
    columns = torch.arange(x.shape[3], device=x.device)
    limit = torch.tensor(widths, device="cpu").to(x.device, non_blocking=True)
    x.masked_fill_((columns[None, :] >= limit[:, None])[:, None, None, :], 0.0)
    return x.contiguous(memory_format=torch.channels_last)


#: padded widths on a GPU: few distinct shapes, so kernels are chosen once and reused
FIXED_WIDTHS = (96, 160, 256, 384, 512, 768, 1024, MAX_WIDTH)


def _padded_width(width: int, fixed: bool) -> int:
    if fixed:
        return next(w for w in FIXED_WIDTHS if w >= width)
    return -(-width // BUCKET) * BUCKET


#: what one recogniser pass costs on a CPU besides its arithmetic, in padded columns of one
#: 48-pixel line (2-core VM: about 14 ms a pass against 0.054 ms a column; docs/benchmarks.md)
PASS_COLUMNS = 256


def _cpu_groups(widths: list[int], max_pixels: int) -> list[list[int]]:
    """Lines (by index, any order) grouped into passes of least total cost: each pass costs
    PASS_COLUMNS plus its rows times its padded width (the widest member's, up to BUCKET).
    Exact over lines sorted by width (a pass is then a run of neighbours)."""
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n   # best[j]: least cost of the j narrowest lines
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        padded = _padded_width(widths[order[j - 1]], False)
        cap = max(1, max_pixels // (HEIGHT * padded))
        for i in range(max(0, j - cap), j):
            cost = best[i] + PASS_COLUMNS + (j - i) * padded
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups = []
    while n:
        groups.append(order[cut[n]: n])
        n = cut[n]
    return groups[::-1]


def _fixed_groups(widths: list[int], max_pixels: int) -> list[list[int]]:
    """Lines grouped widest first, each pass padded to one of FIXED_WIDTHS."""
    order = sorted(range(len(widths)), key=lambda i: widths[i], reverse=True)
    groups = []
    start = 0
    while start < len(order):
        width = _padded_width(widths[order[start]], True)
        members = [i for i in order[start:] if widths[i] <= width]
        members = members[: max(1, max_pixels // (HEIGHT * width))]
        groups.append(members)
        start += len(members)
    return groups


def batches(lines: list[np.ndarray], max_pixels: int = 48 * 320 * 64, *,
            fixed_shapes: bool = False) -> list[tuple[list[int], torch.Tensor, list[int]]]:
    """Group lines (:func:`line_pixels`) into batches; each batch is (indices into
    ``lines``, B×48×W×3 uint8 tensor, each row's own width: 0 for a padding row). On a
    CPU, groups are chosen for least cost (a pass's fixed cost against its padding), widths
    a multiple of BUCKET. With ``fixed_shapes`` (a GPU, where each call costs more than its
    arithmetic) lines share as few batches as ``max_pixels`` allows, padded to one of
    FIXED_WIDTHS with B a power of two; the model trained on padded batches. uint8 travels
    to the device: a quarter of the bytes of the network's input (:func:`network_input`)."""
    widths = [line.shape[1] for line in lines]
    groups = (_fixed_groups if fixed_shapes else _cpu_groups)(widths, max_pixels)
    out: list[tuple[list[int], torch.Tensor, list[int]]] = []
    for members in groups:
        width = _padded_width(max(widths[i] for i in members), fixed_shapes)
        rows = 1 << (len(members) - 1).bit_length() if fixed_shapes else len(members)
        batch = np.zeros((rows, HEIGHT, width, 3), np.uint8)
        row_widths = [0] * rows
        for row, i in enumerate(members):
            row_widths[row] = widths[i]
            batch[row, :, : widths[i]] = lines[i]
        out.append((members, torch.from_numpy(batch), row_widths))
    return out


def ctc_greedy(log_probs: torch.Tensor, charset: Charset, widths: list[int],
               ) -> list[LineReading]:
    """Best-path decoding of B×T×K masked log-probabilities (on any device: only the
    B×T best classes and their probabilities leave it)."""
    best_log, best_index = log_probs.max(-1)
    probs, best = best_log.exp().cpu(), best_index.cpu()
    allowed = charset.allowed.tolist()
    out = []
    for b in range(log_probs.shape[0]):
        ids = best[b, : widths[b]].tolist()
        conf = probs[b, : widths[b]].tolist()
        chars: list[str] = []
        confs: list[float] = []
        positions: list[int] = []
        previous = 0
        for t, k in enumerate(ids):
            if k != 0 and k != previous:
                chars.append(charset.classes[allowed[k]])
                confs.append(conf[t])
                positions.append(t)
            elif k != 0 and k == previous and confs:
                confs[-1] = max(confs[-1], conf[t])
            previous = k
        out.append(LineReading("".join(chars), confs, positions, widths[b]))
    return out


def ctc_scores(log_probs: torch.Tensor, widths: list[int], candidates: list[tuple[int, str]],
               charset: Charset) -> list[float]:
    """Log-likelihood of each (line index, text) candidate under CTC, summed over all
    alignments; -inf for text with characters outside the alphabet."""
    if not candidates:
        return []
    scores: list[float] = [float("-inf")] * len(candidates)
    rows, targets, lengths, inputs, keep = [], [], [], [], []
    for n, (line, text) in enumerate(candidates):
        ids = charset.columns(text)
        if not ids:
            continue
        rows.append(line)
        targets.append(torch.tensor(ids))
        lengths.append(len(ids))
        inputs.append(widths[line])
        keep.append(n)
    if not keep:
        return scores
    lp = log_probs[torch.tensor(rows)].transpose(0, 1).float().cpu()
    loss = torch.nn.functional.ctc_loss(lp, torch.cat(targets), torch.tensor(inputs),
                                        torch.tensor(lengths), blank=0, reduction="none",
                                        zero_infinity=False)
    for n, value in zip(keep, loss.tolist(), strict=True):
        scores[n] = -value
    return scores
