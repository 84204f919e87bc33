"""The reader's two networks behind one small interface, wherever they run.

:class:`LocalNetworks` runs the detector and recogniser in this process (CPU, or a GPU with
CUDA graphs). :mod:`appliance.reader.ppocr.netserver` offers the same two calls to reader
worker processes from one process that owns the GPU, so the per-frame CPU work runs in
many processes while the networks stay loaded once.

Both calls take uint8 pixels as the reader makes them and return float32 results on the CPU
or on the networks' device: ``detect`` B×3×H×W RGB → B×H×W text probabilities (numpy);
``recognise`` B×48×W×3 RGB lines and each row's width → B×T×K log-probabilities over the
plate alphabet (a tensor).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from appliance.reader.ppocr.cudagraphs import GraphedForward
from appliance.reader.ppocr.modeling import PPOCRModel
from appliance.reader.ppocr.recognise import Charset, network_input

log = logging.getLogger("reader.networks")


def _load(folder: Path, device: str) -> Any:
    model: Any = PPOCRModel.from_pretrained(folder)
    # weights stay float32 (BatchNorm statistics overflow float16); a GPU runs the
    # convolutions and matrix products in float16 under autocast (see LocalNetworks).
    # Channels-last: ~20 % faster on a CPU (oneDNN), and what tensor cores want.
    model = model.to(device, dtype=torch.float32, memory_format=torch.channels_last).eval()
    return model.requires_grad_(False)  # read only: the training wing loads its own copy


class CompiledForward:
    """``forward`` through ``torch.compile``, the dimensions ``dynamic`` compiled for any
    size above one (the recogniser: rows and width; the detector: frames of one size): the
    graph's element-wise steps, casts and
    layer norms fuse into a few kernels around the convolutions (H100: a pass in about half
    the time). Should compiling fail (no C compiler, a compiler error), the error is logged
    and ``forward`` runs as it is from then on: slower, never down.

    Kernels compile in this process one at a time unless TORCHINDUCTOR_COMPILE_THREADS says
    otherwise: a served pool whose process had started inductor's parallel compile workers
    read 132 frames/s, one without them 230 (docs/benchmarks.md)."""

    def __init__(self, forward: Any, *, dynamic: tuple[int, ...] = (0,)) -> None:
        import torch._inductor.config as inductor_config  # only a compiling process needs it

        if "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ:
            inductor_config.compile_threads = 1
        self.forward = forward
        self.dynamic = dynamic
        self.compiled = torch.compile(forward)
        #: why compiling failed (None: it has not)
        self.failure: str | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)``, compiled unless compiling failed."""
        if self.failure is not None:
            return self.forward(x)
        for dim in self.dynamic:
            if x.shape[dim] > 1:  # a size of one is compiled as such (torch specialises it)
                torch._dynamo.mark_dynamic(x, dim)
        try:
            return self.compiled(x)
        except Exception as error:  # any compiler failure: run uncompiled
            self.failure = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
            log.error("torch.compile of the reader's networks failed, they run uncompiled: "
                      "%s", self.failure)
            return self.forward(x)


class Networks(Protocol):
    """What the reader needs from its networks."""

    #: where the networks run ("cpu", "cuda"): a GPU wants few, fixed batch shapes
    device: str

    def detect(self, pixels: torch.Tensor) -> np.ndarray:
        """B×3×H×W uint8 RGB frames → B×H×W float32 text probabilities."""
        ...

    def recognise(self, pixels: torch.Tensor, widths: list[int]) -> torch.Tensor:
        """B×48×W×3 uint8 RGB lines (row ``b`` real up to ``widths[b]``) → B×T×K float32
        log-probabilities over the charset's allowed classes."""
        ...


class LocalNetworks:
    """The detector and recogniser loaded in this process on ``device``; on a GPU each
    input shape is captured once as a CUDA graph (``cuda_graphs``) and run in float16."""

    def __init__(self, *, detector: Any, recognizer: Any, charset: Charset, device: str,
                 cuda_graphs: bool = True, compiled: bool = False) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.charset = charset
        self.device = device
        graphs = cuda_graphs and device == "cuda"
        classes = charset.allowed_on(torch.zeros(0, device=device).device)
        detect: Any = lambda x: self.detector(x)["probs"]  # noqa: E731
        recognise: Any = lambda x: self.charset.log_probs(  # noqa: E731
            self.recognizer, x, classes=classes)
        #: the networks' compiled forwards (empty: not compiled)
        self.compiled: tuple[CompiledForward, ...] = ()
        if compiled:
            half = torch.float16 if device == "cuda" else None
            for model in (detector, recognizer):
                model.net.freeze(half)
            detect = CompiledForward(detect, dynamic=(0,))
            recognise = CompiledForward(recognise, dynamic=(0, 3))
            self.compiled = (detect, recognise)
        self.detect_net = GraphedForward(self._autocast(detect), enabled=graphs)
        self.recognise_net = GraphedForward(self._autocast(recognise), enabled=graphs)

    @classmethod
    def load(cls, folder: Path, *, device: str, cuda_graphs: bool = True,
             compiled: bool = False) -> LocalNetworks:
        """The detector and recogniser of the model folder ``folder`` on ``device``
        (``compiled``: through ``torch.compile``, see :class:`CompiledForward`)."""
        recognizer = _load(folder / "recognizer", device)
        return cls(detector=_load(folder / "detector", device), recognizer=recognizer,
                   charset=Charset(list(recognizer.config.charset)), device=device,
                   cuda_graphs=cuda_graphs, compiled=compiled)

    def _autocast(self, forward: Any) -> Any:
        """``forward`` in float16 autocast on a GPU (its result in the type it computed:
        the detector's map in float16, the recogniser's log-probabilities in float32)."""
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.device == "cuda"):
                return forward(x)
        return run

    @torch.inference_mode()
    def detect(self, pixels: torch.Tensor) -> np.ndarray:
        """See :class:`Networks`."""
        return self.detect_on_device(pixels.to(self.device)).float().cpu().numpy()

    def detect_on_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """B×3×H×W uint8 RGB frames already on the device → B×H×W probabilities there, in
        the type the network computed them (float16 under a GPU's autocast); normalising to
        the network's -1..1 BGR input happens on the device (a quarter of the bytes to
        copy)."""
        x = pixels.flip(1).float() / 127.5 - 1.0
        return self.detect_net(x.contiguous(memory_format=torch.channels_last))[:, 0]

    @torch.inference_mode()
    def recognise(self, pixels: torch.Tensor, widths: list[int]) -> torch.Tensor:
        """See :class:`Networks`; the result stays on the device (best paths are found
        there, only they and what verify keeps leave it)."""
        gpu = self.device == "cuda"
        return self.recognise_net(network_input(pixels.to(self.device, non_blocking=gpu),
                                                widths))
