"""What ``torch.compile`` buys the reader's networks on a GPU, shape by shape: each network
as shipped (float16 autocast, CUDA graphs) against the same network frozen and compiled
(then captured the same way), on the shapes the network server runs. Prints one JSON line
per shape (milliseconds of a pass, seconds its compile took, the largest difference in the
outputs) and, with ``--kernels``, the kernels of one eager pass of each:
``python bench/network_compile.py``."""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import Counter
from collections.abc import Callable

import torch
from cuda_timing import cuda_times  # bench/cuda_timing.py, beside this script

from appliance.reader.ppocr.networks import LocalNetworks
from appliance.reader.ppocr.pipeline import DEFAULT_MODEL
from appliance.reader.ppocr.recognise import network_input


def median_ms(step: Callable[[], object], repeats: int, device: str) -> float:
    """Median milliseconds of ``step``."""
    times = sorted(cuda_times(step, repeats, device=device))
    return round(times[len(times) // 2], 3)


def kernels(step: Callable[[], object]) -> dict[str, object]:
    """The kernels one call of ``step`` launches: how many, their device time, the top five."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    times: Counter[str] = Counter()
    count = 0
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            times[event.name[:60]] += event.device_time_total
            count += 1
    return {"kernels": count, "device_ms": round(sum(times.values()) / 1000, 3),
            "top": [(name, round(us / 1000, 3)) for name, us in times.most_common(5)]}


def shapes(args: argparse.Namespace) -> list[tuple[str, torch.Tensor]]:
    """(network, input) pairs: detector batches of station frames, recogniser line batches."""
    out = []
    height, width = args.frame
    for batch in args.frames:
        pixels = torch.randint(0, 255, (batch, 3, height, width), dtype=torch.uint8,
                               device=args.device)
        out.append(("detector", (pixels.float() / 127.5 - 1.0).contiguous(
            memory_format=torch.channels_last)))
    for width in args.widths:
        for rows in args.rows:
            pixels = torch.randint(0, 255, (rows, 48, width, 3), dtype=torch.uint8,
                                   device=args.device)
            out.append(("recogniser", network_input(pixels, [width] * rows)))
    return out


def main() -> None:
    """Time both variants on every shape."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to check the script")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--frame", type=int, nargs=2, default=[960, 1280], metavar=("H", "W"))
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--widths", type=int, nargs="+", default=[160, 384, 768, 1600])
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--kernels", action="store_true",
                        help="Profile one eager pass of each variant on the first shapes.")
    args = parser.parse_args()
    variants = {name: LocalNetworks.load(DEFAULT_MODEL, device=args.device,
                                         compiled=name == "compiled")
                for name in ("shipped", "compiled")}
    print(json.dumps({"device": torch.cuda.get_device_name() if args.device == "cuda"
                      else "cpu", "torch": torch.__version__}))
    profiled: set[str] = set()
    with torch.inference_mode():
        for network, x in shapes(args):
            row: dict[str, object] = {"network": network, "shape": list(x.shape)}
            outputs = {}
            for name, nets in variants.items():
                forward = nets.detect_net if network == "detector" else nets.recognise_net
                started = time.perf_counter()
                outputs[name] = forward(x).float()
                if args.device == "cuda":
                    torch.cuda.synchronize()
                row[f"{name}_first_call_s"] = round(time.perf_counter() - started, 1)
                row[f"{name}_ms"] = median_ms(functools.partial(forward, x), args.repeats,
                                                  args.device)
                if args.kernels and network not in profiled:
                    row[f"{name}_eager_pass"] = kernels(functools.partial(forward.forward, x))
            profiled.add(network)
            row["max_abs_diff"] = float((outputs["shipped"] - outputs["compiled"]).abs().max())
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
