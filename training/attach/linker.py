"""A small learned key-value linker, to compare with the attachment rules by numbers.

Each text run is cut into whitespace tokens; a token carries its box (plate-normalised), its
shape (length, digits, capitals) and schema-match features: "matches field X's regex",
"a value of X starts here", "a label of X starts here", "a label of X ends just before".
A transformer encoder over all tokens of a plate labels each token with the field whose
value it belongs to (or none); a field's value is its most probable contiguous token group.
It trains on oracle layouts of the ``train`` split without rendering pixels (minutes on a
CPU) and is measured exactly as the rules are: oracle dev and held-out layouts, and behind
real readers' runs (``training.calibrate.collect`` files).

``python -m training.attach.linker --train 3000 --epochs 12 --out linker-report.json
[--reads READS/station.jsonl --reads READS/station-rapidocr.jsonl]``

The running appliance never imports this; the rules stay unless the numbers say otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from appliance.reader.fields import assign_fields
from appliance.reader.labels import label_regex, nearest_field
from appliance.reader.lines import Line, group_lines
from appliance.reader.textmatch import fold
from appliance.schema import PlateSchema, load_schema
from training.attach.oracle import oracle_plate
from training.calibrate.fit import frames, word_from_record
from training.evaluate import scoreable


@dataclass
class Token:
    """One whitespace token of a run, with its run and character span."""

    text: str
    box: tuple[float, float, float, float]
    run: int
    start: int
    end: int


def tokens_of(lines: list[Line]) -> tuple[list[Token], list[str]]:
    """Tokens in reading order, and the runs' texts they index into."""
    tokens: list[Token] = []
    runs: list[str] = []
    for line in lines:
        for word in line.words:
            text = word.text
            x0, y0, x1, y1 = word.box
            for match in re.finditer(r"\S+", text):
                a, b = match.start() / max(1, len(text)), match.end() / max(1, len(text))
                tokens.append(Token(match.group(0), (x0 + a * (x1 - x0), y0, x0 + b * (x1 - x0),
                                                     y1), len(runs), match.start(), match.end()))
            runs.append(text)
    return tokens, runs


def features(tokens: list[Token], runs: list[str], schema: PlateSchema) -> torch.Tensor:
    """One feature row per token (see the module docstring)."""
    if not tokens:
        return torch.zeros(0, feature_size(schema))
    xs = [t.box[0] for t in tokens] + [t.box[2] for t in tokens]
    ys = [t.box[1] for t in tokens] + [t.box[3] for t in tokens]
    left, top = min(xs), min(ys)
    scale = max(max(xs) - left, max(ys) - top, 1.0)
    heights = sorted(t.box[3] - t.box[1] for t in tokens)
    median = max(1.0, heights[len(heights) // 2])
    table = tuple((name, tuple(spec.labels)) for name, spec in schema.fields.items())
    specs = list(schema.fields.values())
    rows = []
    for i, token in enumerate(tokens):
        x0, y0, x1, y1 = token.box
        text, run = token.text, runs[token.run]
        rest = run[token.start:]
        before = run[: token.start]
        row = [(x0 - left) / scale, (y0 - top) / scale, (x1 - left) / scale, (y1 - top) / scale,
               math.log((y1 - y0) / median + 1e-3), math.log((x1 - x0) / median + 1e-3),
               float(token.start == 0), float(token.end == len(run.rstrip())),
               min(len(text), 20) / 20, sum(c.isdigit() for c in text) / len(text),
               sum(c.isupper() for c in text) / len(text),
               sum(not c.isalnum() for c in text) / len(text),
               float(i > 0 and tokens[i - 1].run == token.run)]
        near = nearest_field(text, table)
        for spec in specs:
            value_re, label = spec.value_regex(), label_regex(spec)
            row += [float(bool(value_re.fullmatch(text))),
                    float(bool(value_re.match(rest))),
                    float(bool(label and label.match(rest)) or near == spec.name),
                    float(bool(label and before.strip() and
                               label.fullmatch(before.strip().split("  ")[-1] + " ")))]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


def feature_size(schema: PlateSchema) -> int:
    """Length of one feature row."""
    return 13 + 4 * len(schema.fields)


def targets(tokens: list[Token], runs: list[str], values: dict[str, str], shown: set[str],
            names: list[str]) -> torch.Tensor:
    """Per token: 1 + the index of the field whose value it is part of, else 0."""
    out = torch.zeros(len(tokens), dtype=torch.long)
    for k, name in enumerate(names):
        if name not in shown:
            continue
        value = values[name]
        for r, run in enumerate(runs):
            at = run.find(value)
            if at < 0 or (at > 0 and run[at - 1].isalnum()):
                continue
            for i, token in enumerate(tokens):
                if token.run == r and token.start >= at and token.end <= at + len(value):
                    out[i] = k + 1
            break
    return out


class Linker(nn.Module):
    """Transformer encoder over a plate's tokens; per token, none or one field."""

    def __init__(self, inputs: int, fields: int, width: int = 96, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(inputs, width), nn.GELU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, fields + 1)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Logits (batch, tokens, fields + 1); ``pad`` marks padding tokens."""
        return self.head(self.encoder(self.embed(x), src_key_padding_mask=pad))


def link(model: Linker, tokens: list[Token], runs: list[str], x: torch.Tensor,
         names: list[str]) -> dict[str, str | None]:
    """Each field's value: its most probable contiguous group of tokens in one run."""
    if not tokens:
        return dict.fromkeys(names)
    with torch.no_grad():
        probs = model(x[None], torch.zeros(1, len(tokens), dtype=torch.bool))[0].softmax(-1)
    best = probs.argmax(-1).tolist()
    out: dict[str, str | None] = {}
    for k, name in enumerate(names):
        groups: list[list[int]] = []
        for i, cls in enumerate(best):
            if cls != k + 1:
                continue
            if groups and groups[-1][-1] == i - 1 and tokens[i - 1].run == tokens[i].run:
                groups[-1].append(i)
            else:
                groups.append([i])
        if not groups:
            out[name] = None
            continue
        group = max(groups, key=lambda g: float(probs[g, k + 1].mean()))
        first, last = tokens[group[0]], tokens[group[-1]]
        out[name] = runs[first.run][first.start:last.end]
    return out


def oracle_examples(schema: PlateSchema, *, split: str, n: int, seed: int, runs: str,
                    ) -> list[tuple[list[Token], list[str], torch.Tensor, dict[str, str],
                                    set[str], str]]:
    """Oracle plates as (tokens, runs, features, values, shown, layout kind)."""
    out = []
    for index in tqdm(range(n), desc=f"oracle {split}/{runs}", leave=False, disable=None):
        plate = oracle_plate(schema, seed=seed, split=split, index=index, runs=runs)
        tokens, texts = tokens_of(plate.lines)
        out.append((tokens, texts, features(tokens, texts, schema), plate.values, plate.shown,
                    plate.layout_kind))
    return out


def train(schema: PlateSchema, examples: list[Any], *, epochs: int, seed: int = 0) -> Linker:
    """Fit the linker on oracle examples (cross-entropy per token, Adam)."""
    torch.manual_seed(seed)
    names = list(schema.fields)
    model = Linker(feature_size(schema), len(names))
    data = [(x, targets(t, r, v, s, names)) for t, r, x, v, s, _ in examples if len(t)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(data) / 32)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    rng = random.Random(seed)
    model.train()
    bar = tqdm(total=steps, desc="train linker", disable=None)
    for _ in range(epochs):
        rng.shuffle(data)
        for start in range(0, len(data), 32):
            batch = data[start : start + 32]
            width = max(len(y) for _, y in batch)
            x = torch.zeros(len(batch), width, batch[0][0].shape[1])
            y = torch.full((len(batch), width), -100, dtype=torch.long)
            pad = torch.ones(len(batch), width, dtype=torch.bool)
            for i, (xi, yi) in enumerate(batch):
                x[i, : len(yi)], y[i, : len(yi)], pad[i, : len(yi)] = xi, yi, False
            loss = nn.functional.cross_entropy(model(x, pad).flatten(0, 1), y.flatten())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return model


def measure_oracle(model: Linker, schema: PlateSchema, examples: list[Any]) -> dict[str, Any]:
    """Share of drawn values the linker attaches right (the rules' share on the same plates:
    ``python -m training.attach.evaluate``, same seed and count)."""
    names = list(schema.fields)
    right = total = 0
    for tokens, texts, x, values, shown, _ in examples:
        got = link(model, tokens, texts, x, names)
        for name in shown:
            total += 1
            right += fold(got[name]) == fold(values[name])
    return {"linker": round(right / max(1, total), 4), "values": total}


def measure_reads(model: Linker, schema: PlateSchema, path: Path) -> dict[str, Any]:
    """Behind a reader: values attached right where its text holds them, linker and rules."""
    names = list(schema.fields)
    right = {"linker": 0, "rules": 0}
    held = 0
    for record in frames(path):
        lines = group_lines([word_from_record(w) for w in record["words"]])
        tokens, texts = tokens_of(lines)
        got = link(model, tokens, texts, features(tokens, texts, schema), names)
        rules = assign_fields(lines, schema)
        folded = [fold(t) or "" for t in texts]
        for name, truth in record["fields"].items():
            if not scoreable(truth):
                continue
            value = fold(truth["value"]) or ""
            if not any(value in run for run in folded):
                continue
            held += 1
            right["linker"] += fold(got[name]) == value
            right["rules"] += fold(rules[name].value) == value
    return {"file": str(path), "values_in_text": held,
            **{k: round(v / max(1, held), 4) for k, v in right.items()}}


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schema", type=Path, default=Path("config/schemas/motor.toml"))
    parser.add_argument("--train", type=int, default=3000, help="oracle plates to train on")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("-n", type=int, default=800, help="oracle plates per evaluation split")
    parser.add_argument("--reads", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    schema = load_schema(args.schema)
    half = args.train // 2
    examples = oracle_examples(schema, split="train", n=half, seed=7, runs="items") + \
        oracle_examples(schema, split="train", n=args.train - half, seed=8, runs="merged")
    model = train(schema, examples, epochs=args.epochs)
    report: dict[str, Any] = {"train_plates": args.train, "epochs": args.epochs,
                              "parameters": sum(p.numel() for p in model.parameters())}
    for split in ("dev", "heldout"):
        for runs in ("items", "merged"):
            test = oracle_examples(schema, split=split, n=args.n, seed=2026, runs=runs)
            report[f"oracle {split}/{runs}"] = measure_oracle(model, schema, test)
            print(split, runs, report[f"oracle {split}/{runs}"])
    for path in args.reads:
        key = f"{path.parent.name}/{path.name}"
        report[key] = measure_reads(model, schema, path)
        print(report[key])
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
