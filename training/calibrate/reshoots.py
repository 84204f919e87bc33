"""What reshoots are worth: every station unit photographed ``max_reshoots + 1`` times, read
once, then judged under policy variants offline.

``python -m training.calibrate.reshoots collect --seed 7919 -n 200 --out shots.jsonl``
renders each unit's frames (``render_sample(..., shot=k)``: the same plate in the same
place, new light and camera noise), reads them with the shipped reader and verify on the
true record and on one with a serial character changed; ``python -m
training.calibrate.reshoots rates shots.jsonl [...]`` prints the verdict rates with the
first frame judged as final, and through the reshoots with each frame judged alone, frames
combined (``policy.combine_reshoots``) and a MISMATCH confirmed by a second frame
(``policy.confirm_mismatch``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from appliance.schema import load_schema
from appliance.synth.dataset import iter_shots
from appliance.transport.messages import QualityIssue
from rules import RuleSet, load_rules
from training.verdict_rates import Shot, VerdictRates, one_character_changed

SCHEMA = Path("config/schemas/motor.toml")
RULES = Path("config/rules.toml")


def collect(*, seed: int, n: int, out: Path, device: str = "cpu", start: int = 0,
            workers: int = 1) -> None:
    """Read every frame of units ``start..start+n-1`` of the station split (appends),
    rendered by ``workers`` processes."""
    from appliance.reader import load_reader
    from training.evaluate import shot_of, shown_values

    schema = load_schema(SCHEMA)
    reader = load_reader("ppocr", schema=schema, device=device)
    units = iter_shots(SCHEMA, seed=seed, split="station", indices=range(start, start + n),
                       shots=load_rules(RULES).policy.max_reshoots + 1, workers=workers)
    with out.open("a", encoding="utf-8") as log:
        for index, frames in tqdm(units, total=n, desc=f"units of seed {seed}"):
            shots, truth = [], {}
            for image, labels in frames:
                truth = shown_values(labels["fields"])
                shot = shot_of(reader, image, reader.read([image])[0], truth, verify=True)
                shots.append({"reading": shot.reading,
                              "quality": [q.model_dump(mode="json") for q in shot.quality],
                              "verify": shot.verify, "verify_changed": shot.verify_changed})
            changed = one_character_changed(truth["serial"]) if truth.get("serial") else None
            log.write(json.dumps({"seed": seed, "index": index, "truth": truth,
                                  "changed_serial": changed, "shots": shots}) + "\n")
            log.flush()  # a run cut short keeps every unit it finished


def _units(paths: list[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines if line.strip())


def rates(paths: list[Path], rules: RuleSet) -> dict[str, dict[str, Any]]:
    """Verdict rates of the collected units under each policy variant."""
    def policy(**update: bool) -> RuleSet:
        return rules.model_copy(update={"policy": rules.policy.model_copy(update=update)})

    variants = {
        "first frame as final": (policy(combine_reshoots=False, confirm_mismatch=False), False),
        "reshoots, each frame alone": (policy(combine_reshoots=False, confirm_mismatch=False),
                                       True),
        "reshoots, frames combined": (policy(combine_reshoots=True, confirm_mismatch=False),
                                      True),
        "reshoots, combined, MISMATCH confirmed": (
            policy(combine_reshoots=True, confirm_mismatch=True), True),
    }
    counters = {name: VerdictRates(ruleset, family="motor")
                for name, (ruleset, _) in variants.items()}
    for unit in _units(paths):
        shots = [Shot(s["reading"], [QualityIssue.model_validate(q) for q in s["quality"]],
                      s["verify"], s["verify_changed"]) for s in unit["shots"]]
        for name, (_, through) in variants.items():
            if through:
                counters[name].add_unit(shots.__getitem__, unit["truth"],
                                        changed_serial=unit["changed_serial"])
            else:
                first = shots[0]
                counters[name].add(first.reading, unit["truth"], first.quality,
                                   verify=first.verify, changed_serial=unit["changed_serial"],
                                   verify_changed=first.verify_changed)
    return {name: counter.summary() for name, counter in counters.items()}


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("collect", help="read every unit's frames")
    take.add_argument("--seed", type=int, required=True)
    take.add_argument("-n", type=int, default=200)
    take.add_argument("--start", type=int, default=0)
    take.add_argument("--device", default="cpu")
    take.add_argument("--workers", type=int, default=1, help="render processes")
    take.add_argument("--out", type=Path, required=True)
    judge = commands.add_parser("rates", help="verdict rates under each policy variant")
    judge.add_argument("shots", type=Path, nargs="+")
    judge.add_argument("--rules", type=Path, default=RULES)
    args = parser.parse_args()
    if args.command == "collect":
        collect(seed=args.seed, n=args.n, out=args.out, device=args.device, start=args.start,
                workers=args.workers)
    else:
        for name, summary in rates(args.shots, load_rules(args.rules)).items():
            print(json.dumps({"variant": name, **summary}))


if __name__ == "__main__":
    main()
