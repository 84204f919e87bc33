"""Train the reader (detector + recognizer) on frames the synthetic engine renders on the fly.

``python -m appliance.reader.neural.train --out DIR --minutes M`` (also ``nameplate train``).
Time-budgeted and resumable (``DIR/checkpoint.pt``); logs loss to ``DIR/train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import VisionEncoderDecoderModel

from appliance.reader.neural.data import (
    SyntheticFrames,
    TrainingBank,
    collate,
    single_thread_worker,
)
from appliance.reader.neural.detector import TextDetector, TextDetectorConfig
from appliance.reader.neural.recognizer import build_recognizer
from appliance.reader.neural.vocab import PAD_ID, CharVocab, default_chars
from appliance.schema import load_schema
from appliance.synth.values import DISTRACTORS

REPO = Path(__file__).resolve().parents[3]


def build_models(vocab: CharVocab, size: str) -> tuple[Any, Any]:
    """Fresh detector and recognizer; ``tiny`` is for CPU tests."""
    if size == "tiny":
        return (TextDetector(TextDetectorConfig(channels=[4, 8, 8, 8], input_width=160,
                                                input_height=120)),
                build_recognizer(vocab, hidden=64, encoder_layers=1, decoder_layers=1))
    return TextDetector(TextDetectorConfig()), build_recognizer(vocab)


def save_models(out: Path, detector: TextDetector, recognizer: nn.Module, vocab: CharVocab,
                *, half: bool = True) -> None:
    """Write ``out/detector`` and ``out/recognizer`` (safetensors, fp16 by default)."""
    for name, model in (("detector", detector), ("recognizer", recognizer)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        copy = model
        if half:
            import copy as copy_module

            copy = copy_module.deepcopy(model).half()
        copy.save_pretrained(folder, max_shard_size="40MB")  # type: ignore[operator]
    vocab.save(out / "recognizer")


def train(out: Path, *, minutes: float, device: str, workers: int, frames: int, seed: int,
          schema_file: Path, lr: float = 1e-3, size: str = "base", resume: bool = True,
          lines: int = 768, init: Path | None = None,
          max_steps: int | None = None, log_every: int = 25,
          snapshot: Path | None = None, snapshot_every: int = 1000,
          stop_after: float | None = None) -> dict[str, Any]:
    """Train until ``minutes`` (or ``max_steps``) run out; returns a summary."""
    out.mkdir(parents=True, exist_ok=True)
    schema = load_schema(schema_file)
    extra = "".join(label for spec in schema.fields.values() for label in spec.labels)
    vocab = CharVocab(default_chars(extra + "".join(DISTRACTORS)))
    detector, recognizer = build_models(vocab, size)
    if init is not None:  # continue from saved weights (a new schedule and optimizer)
        vocab = CharVocab.load(init / "recognizer")
        detector = TextDetector.from_pretrained(init / "detector").float()
        recognizer = VisionEncoderDecoderModel.from_pretrained(init / "recognizer").float()
    detector.to(device)
    recognizer.to(device)
    bases = (lr * 2, lr)
    optimizer = torch.optim.AdamW([{"params": detector.parameters(), "lr": bases[0]},
                                   {"params": recognizer.parameters(), "lr": bases[1]}],
                                  weight_decay=0.01)
    step, spent = 0, 0.0
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        detector.load_state_dict(state["detector"])
        recognizer.load_state_dict(state["recognizer"])
        optimizer.load_state_dict(state["optimizer"])
        step, spent = state["step"], state["seconds"]
    input_w, input_h = detector.config.input_width, detector.config.input_height
    dataset = SyntheticFrames(schema, seed=seed + step, input_w=input_w, input_h=input_h)
    loader = DataLoader(dataset, batch_size=None, num_workers=workers,
                        collate_fn=as_is,  # type: ignore[arg-type]
                        worker_init_fn=single_thread_worker,
                        prefetch_factor=8 if workers else None, persistent_workers=workers > 0)
    bank = TrainingBank(iter(loader))
    bank.wait(min(4000, 4 * lines))
    sampler = random.Random(seed + step)
    budget = minutes * 60
    started = time.time() - spent
    call_started = time.time()  # ``stop_after`` minutes of this call, then checkpoint and stop
    log = (out / "train_log.jsonl").open("a")
    history: list[dict[str, float]] = []
    use_amp = device == "cuda"
    detector.train()
    recognizer.train()
    while True:
        elapsed = time.time() - started
        if elapsed >= budget or (max_steps is not None and step >= max_steps):
            break
        if stop_after is not None and time.time() - call_started >= stop_after * 60:
            break
        progress = elapsed / budget
        scale = min(1.0, (step + 1) / 300) * 0.5 * (1 + math.cos(math.pi * progress))
        for group, base in zip(optimizer.param_groups, bases, strict=True):
            group["lr"] = base * max(scale, 0.02)
        chosen, pairs = bank.sample(sampler, frames, lines)
        batch = {k: v.to(device, non_blocking=True)
                 for k, v in collate(chosen, vocab, pairs).items()}
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
            det = detector(pixel_values=batch["pixels"], labels=batch["targets"])
        decoder_loss, ctc = recognition_loss(recognizer, batch, amp=use_amp)
        loss = det["loss"] + decoder_loss + ctc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([*detector.parameters(), *recognizer.parameters()], 1.0)
        optimizer.step()
        step += 1
        record = {"step": step, "seconds": round(time.time() - started, 1),
                  "loss": round(loss.item(), 4), "detector": round(det["loss"].item(), 4),
                  "decoder": round(decoder_loss.item(), 4), "ctc": round(ctc.item(), 4),
                  "lines": int(batch["line_pixels"].shape[0]), "rendered": bank.rendered}
        history.append(record)
        if step % log_every == 0 or step == 1:
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record), flush=True)
        if step % 500 == 0:
            _checkpoint(checkpoint, detector, recognizer, optimizer, step, time.time() - started)
        if snapshot is not None and step % snapshot_every == 0:
            save_models(snapshot, detector, recognizer, vocab)  # usable weights if cut off
            detector.train()
            recognizer.train()
    bank.close()
    _checkpoint(checkpoint, detector, recognizer, optimizer, step, time.time() - started)
    detector.eval()
    recognizer.eval()
    save_models(out, detector, recognizer, vocab)
    summary = {"steps": step, "seconds": round(time.time() - started, 1),
               "first_loss": history[0]["loss"] if history else None,
               "last_loss": (sum(h["loss"] for h in history[-20:]) / len(history[-20:]))
               if history else None,
               "frames_per_step": frames, "lines_per_step": lines,
               "frames_rendered": bank.rendered, "device": device, "size": size,
               "init": str(init) if init else None}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def recognition_loss(recognizer: Any, batch: dict[str, torch.Tensor], *, amp: bool = False,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The recognizer's two losses on a line batch: decoder cross-entropy and CTC."""
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
        rec = recognizer(pixel_values=batch["line_pixels"], labels=batch["labels"])
        ctc_logits = recognizer.encoder.ctc_logits(rec.encoder_last_hidden_state)
    log_probs = torch.log_softmax(ctc_logits.float(), -1).transpose(0, 1)
    widths = batch["line_widths"].clamp(max=log_probs.shape[0])
    ctc = nn.functional.ctc_loss(log_probs, batch["ctc_targets"], widths,
                                 batch["ctc_lengths"], blank=PAD_ID, zero_infinity=True)
    return rec.loss, ctc


def as_is(example: dict[str, Any]) -> dict[str, Any]:
    """Keep a rendered example's numpy arrays as they are (no tensor conversion)."""
    return example


def _checkpoint(path: Path, detector: nn.Module, recognizer: nn.Module,
                optimizer: torch.optim.Optimizer, step: int, seconds: float) -> None:
    torch.save({"detector": detector.state_dict(), "recognizer": recognizer.state_dict(),
                "optimizer": optimizer.state_dict(), "step": step, "seconds": seconds}, path)


def main() -> None:
    """Command-line entry point (the GPU machine has no `nameplate` console script)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16, help="detector frames per step")
    parser.add_argument("--lines", type=int, default=768, help="text lines per step")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this trained reader's weights")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--size", choices=["base", "tiny"], default="base")
    parser.add_argument("--schema", type=Path, default=REPO / "config" / "schemas" / "motor.toml")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--snapshot", type=Path, default=None)
    parser.add_argument("--stop-after", type=float, default=None,
                        help="minutes of this run; the schedule still spans --minutes")
    args = parser.parse_args()
    summary = train(args.out, minutes=args.minutes, device=args.device, workers=args.workers,
                    frames=args.frames, seed=args.seed, schema_file=args.schema, lr=args.lr,
                    size=args.size, resume=not args.no_resume, max_steps=args.max_steps,
                    snapshot=args.snapshot, stop_after=args.stop_after,
                    lines=args.lines, init=args.init)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
