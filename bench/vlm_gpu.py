"""GPU latency of the ``vlm`` backend on a random model of GLM-4.6V-Flash's shape (10.3 B).

Prefill, a 32-token read through ``generate`` and verify by likelihood, at batch 1 and 8, on a
896×672 frame (768 image tokens); optionally the same read with a static KV cache.

    python bench/vlm_gpu.py [--config tests/data/glm-4.6v-flash-shape.json] [--static]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cuda_timing import cuda_times  # bench/cuda_timing.py, beside this script

from appliance.reader.vlm.backend import VLMReader
from appliance.schema import load_schema
from training.vlm.shapes import random_glm4v

REPO = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """p50 / min of ``fn`` in ms after one warm-up call."""
    times = cuda_times(fn, repeat)
    return {"p50_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


def measure_batch(reader: VLMReader, frame: np.ndarray, expected: dict[str, str],
                  batch: int, repeat: int) -> dict[str, object]:
    """Prefill, a forced 32-token generate, the backend's read and verify at one batch size."""
    model = reader.model
    images = [frame] * batch
    prompts = [reader_prompt(reader, reader.schema.field_names())] * batch
    inputs = reader.inputs.build(images, prompts, device="cuda", dtype=torch.bfloat16)

    def prefill() -> None:
        with torch.inference_mode():
            model(**inputs.tensors, logits_to_keep=1)

    def read32() -> None:
        with torch.inference_mode():
            model.generate(**inputs.tensors, max_new_tokens=32, min_new_tokens=32,
                           do_sample=False)

    return {f"prompt_tokens_b{batch}": inputs.prompt_tokens,
            f"prefill_b{batch}": timed(prefill, repeat),
            f"read32_generate_b{batch}": timed(read32, repeat),
            f"read_backend_b{batch}": timed(lambda: reader.read(images), repeat),
            f"verify_b{batch}": timed(lambda: reader.verify_batch(images, [expected] * batch),
                                      repeat)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path,
                        default=REPO / "tests/data/glm-4.6v-flash-shape.json")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--static", action="store_true", help="also a static-cache read")
    args = parser.parse_args()
    started = time.perf_counter()
    loaded = random_glm4v(args.config)
    model = loaded[0]
    params = sum(p.numel() for p in model.parameters()) / 1e9
    schema = load_schema(REPO / "config/schemas/motor.toml")
    reader = VLMReader(schema=schema, device="cuda", loaded=loaded, max_new_tokens=32,
                       cache_size=0, model_dir="random GLM-4.6V-Flash shape")
    rng = np.random.default_rng(0)
    frame = (rng.random((672, 896, 3)) * 255).astype(np.uint8)
    expected = {"model": "VX132M-4", "serial": "48213907KQ", "voltage": "230/400 V",
                "current": "15.2/8.8 A", "power": "4 kW", "frequency": "50 Hz"}
    out: dict[str, object] = {"gpu": torch.cuda.get_device_name(), "params_b": round(params, 2),
                              "build_s": round(time.perf_counter() - started, 1),
                              "torch": torch.__version__}
    import transformers

    out["transformers"] = transformers.__version__
    for batch in (1, 8):
        out.update(measure_batch(reader, frame, expected, batch, args.repeat))
        print(json.dumps(out), flush=True)
    if args.static:
        prompt_batch = reader.inputs.build([frame], [reader_prompt(reader, schema.field_names())],
                                           device="cuda", dtype=torch.bfloat16)

        def read_static() -> None:
            with torch.inference_mode():
                model.generate(**prompt_batch.tensors, max_new_tokens=32, min_new_tokens=32,
                               do_sample=False, cache_implementation="static")

        first = time.perf_counter()
        signal.signal(signal.SIGALRM, _too_long)
        signal.alarm(240)  # compiling may take long: keep the numbers measured so far
        try:
            read_static()
            out["static_first_call_s"] = round(time.perf_counter() - first, 1)
            out["read32_static_b1"] = timed(read_static, args.repeat)
            signal.alarm(0)
        except Exception as exc:
            out["static_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
    print(json.dumps(out, indent=2))


def _too_long(*_: object) -> None:
    raise TimeoutError("static cache: over 240 s")


def reader_prompt(reader: VLMReader, fields: list[str]) -> str:
    """The backend's own read prompt for ``fields``."""
    from appliance.reader.vlm.prompts import read_prompt

    return read_prompt(reader.schema, fields)


if __name__ == "__main__":
    main()
