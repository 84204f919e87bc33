"""Backend ``vlm``: a transformers image-text-to-text model from a local folder.

Loaded once (bf16 on CUDA), never from a hub (``local_files_only``, ``HF_HUB_OFFLINE``),
``trust_remote_code`` off unless the configuration turns it on. ``read`` asks for the
schema's fields as JSON, greedy, capped at ``max_new_tokens`` and a time limit, and stops as
soon as the JSON object is closed; a value outside its field's regex, an answer cut by the
cap or the time limit is ``not read``. ``verify`` scores expected values in one forward pass.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from appliance.reader.base import PlateReading
from appliance.reader.vlm.inputs import InputBuilder
from appliance.reader.vlm.prompts import answer_pieces, first_json_object, parse_answer, read_prompt
from appliance.reader.vlm.score import DEFAULT_MARGIN, judge
from appliance.schema import PlateSchema
from appliance.transport.messages import FieldValue

log = logging.getLogger("appliance.reader.vlm")


class ModelFolderError(ValueError):
    """The model folder is missing or not a loadable image-text-to-text model."""


class JsonClosed(StoppingCriteria):
    """Stop a row once its answer holds a whole JSON object (every field is closed)."""

    def __init__(self, tokenizer: Any, prompt_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_tokens = prompt_tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor,
                 **_: Any) -> torch.BoolTensor:
        done = [first_json_object(self.tokenizer.decode(row[self.prompt_tokens:],
                                                        skip_special_tokens=True)) is not None
                for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def load_model_folder(model_dir: Path, *, device: str, trust_remote_code: bool = False,
                      ) -> tuple[Any, Any, Any]:
    """(model, tokenizer, image processor) from a local folder; nothing is ever downloaded."""
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    os.environ["HF_HUB_OFFLINE"] = "1"
    if not (model_dir / "config.json").is_file():
        raise ModelFolderError(f"{model_dir}: no config.json (reader.model_dir must name a "
                               "local folder with a transformers image-text-to-text model)")
    options = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, **options)
        processor = AutoImageProcessor.from_pretrained(model_dir, **options)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFolderError(f"{model_dir}: cannot load the model: {exc}") from None
    return model.to(device).eval(), tokenizer, processor  # type: ignore[arg-type]


class VLMReader:
    """Reads and verifies plates with a vision-language model."""

    name = "vlm"

    def __init__(self, *, schema: PlateSchema, device: str = "cpu",
                 model_dir: Path | str | None = None, max_new_tokens: int = 48,
                 timeout_s: float = 30.0, cache_size: int = 256, trust_remote_code: bool = False,
                 static_cache: bool = False, loaded: tuple[Any, Any, Any] | None = None,
                 **_: object) -> None:
        if loaded is None:
            if model_dir is None:
                raise ModelFolderError("the vlm backend needs reader.model_dir: a local folder "
                                       "with an image-text-to-text model")
            loaded = load_model_folder(Path(model_dir), device=device,
                                       trust_remote_code=trust_remote_code)
        self.model, self.tokenizer, self.image_processor = loaded
        self.schema = schema
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.timeout_s = timeout_s
        # a static KV cache lets generate compile its decode step (H100, 10 B shape: 32 tokens
        # 1.29 s → 0.48 s; the first call compiles for about a minute)
        self.static_cache = static_cache and device == "cuda"
        self.model_id = str(model_dir or getattr(self.model.config, "_name_or_path", "memory"))
        accepts = inspect.signature(self.model.forward).parameters
        self.inputs = InputBuilder(self.tokenizer, self.image_processor, self.model.config,
                                   token_types="mm_token_type_ids" in accepts)
        self.dtype = next(self.model.parameters()).dtype
        self._cache: OrderedDict[tuple[str, str, str], PlateReading] = OrderedDict()
        self.cache_size = cache_size

    # -- read -------------------------------------------------------------------------------
    def read(self, images: Sequence[np.ndarray], *, fields: Sequence[list[str]] | None = None,
             hints: Sequence[list[str] | None] | None = None) -> list[PlateReading]:
        """Read each image (``fields[i]``: only those fields; ``hints[i]``: OCR lines)."""
        names = [list(f) for f in fields] if fields else [self.schema.field_names()] * len(images)
        notes = list(hints) if hints else [None] * len(images)
        prompts = [read_prompt(self.schema, n, h) for n, h in zip(names, notes, strict=True)]
        keys = [(_image_hash(i), p, self.model_id) for i, p in zip(images, prompts, strict=True)]
        out: list[PlateReading | None] = [self._cached(k) for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            fresh = self._generate([images[i] for i in todo], [prompts[i] for i in todo],
                                   [names[i] for i in todo], [keys[i][0] for i in todo])
            for i, reading in zip(todo, fresh, strict=True):
                out[i] = reading
                self._remember(keys[i], reading)
        return [r for r in out if r is not None]

    def _cached(self, key: tuple[str, str, str]) -> PlateReading | None:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None

    def _remember(self, key: tuple[str, str, str], reading: PlateReading) -> None:
        if self.cache_size <= 0:
            return
        self._cache[key] = reading
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    @torch.inference_mode()
    def _generate(self, images: list[np.ndarray], prompts: list[str], names: list[list[str]],
                  hashes: list[str]) -> list[PlateReading]:
        started = time.perf_counter()
        batch = self.inputs.build(images, prompts, device=self.device, dtype=self.dtype)
        output = self.model.generate(
            **batch.tensors, max_new_tokens=self.max_new_tokens, do_sample=False,
            max_time=self.timeout_s, return_dict_in_generate=True, output_scores=True,
            **({"cache_implementation": "static"} if self.static_cache else {}),
            stopping_criteria=StoppingCriteriaList([JsonClosed(self.tokenizer,
                                                               batch.prompt_tokens)]))
        elapsed = time.perf_counter() - started
        timed_out = elapsed >= self.timeout_s
        logprobs = self.model.compute_transition_scores(output.sequences, output.scores,
                                                        normalize_logits=True)
        readings = []
        for row, fields in enumerate(names):
            generated = output.sequences[row, batch.prompt_tokens:].tolist()
            readings.append(self._reading(generated, logprobs[row].float().cpu(), fields,
                                          timed_out=timed_out))
            log.info("vlm read %d tokens in, %d out, %.0f ms", batch.prompt_tokens,
                     len(generated), elapsed * 1000, extra={
                         "frame_sha256": hashes[row][:16], "backend": self.name,
                         "model": self.model_id, "tokens_in": batch.prompt_tokens,
                         "tokens_out": len(generated), "latency_ms": round(elapsed * 1000, 1)})
        return readings

    def _reading(self, generated: list[int], logprobs: torch.Tensor, fields: list[str], *,
                 timed_out: bool) -> PlateReading:
        special = set(self.tokenizer.all_special_ids)
        kept = [t for t in generated if t not in special]
        text = self.tokenizer.decode(kept)
        parsed = parse_answer(text, self.schema, fields)
        ends = _char_ends(self.tokenizer, kept)
        probs = [float(lp) for t, lp in zip(generated, logprobs.tolist(), strict=False)
                 if t not in special]
        values: dict[str, FieldValue] = {}
        for name in self.schema.field_names():
            value = parsed.values.get(name) if name in fields else None
            confidence = 0.0
            if value is not None and name in parsed.spans:
                lo, hi = parsed.spans[name]
                inside = [p for p, end in zip(probs, ends, strict=False) if lo < end <= hi + 1]
                confidence = float(np.exp(np.mean(inside))) if inside else 0.0
            values[name] = FieldValue(value=value, confidence=min(1.0, confidence),
                                      source=self.name)
        error = None
        if not parsed.complete:
            error = ("vlm: answer cut by the time limit" if timed_out else
                     f"vlm: no complete JSON within max_new_tokens={self.max_new_tokens}")
        return PlateReading(values, error=error, extra={
            "source": self.name, "capped": not parsed.complete, "raw": text[:500],
            "tokens_out": len(generated), "quality": []})

    # -- verify -----------------------------------------------------------------------------
    @torch.inference_mode()
    def verify_batch(self, images: Sequence[np.ndarray], expected: Sequence[dict[str, str]],
                     *, margin: float = DEFAULT_MARGIN) -> list[dict[str, dict[str, object]]]:
        """Score each image's expected values under the model (teacher forcing, one forward
        pass for the whole batch): per field verified / differs / unreadable."""
        prompts = [read_prompt(self.schema, list(e)) for e in expected]
        batch = self.inputs.build(images, prompts, device=self.device, dtype=self.dtype)
        answers = [self.inputs.encode_pieces(answer_pieces(dict(e))) for e in expected]
        longest = max(len(ids) for ids, _ in answers)
        pad = int(self.tokenizer.pad_token_id or 0)
        tail = torch.full((len(images), longest), pad, dtype=torch.long)
        tail_mask = torch.zeros((len(images), longest), dtype=torch.long)
        for row, (ids, _) in enumerate(answers):
            tail[row, :len(ids)] = torch.tensor(ids)
            tail_mask[row, :len(ids)] = 1
        tensors = dict(batch.tensors)
        tensors["input_ids"] = torch.cat([tensors["input_ids"], tail.to(self.device)], dim=1)
        tensors["attention_mask"] = torch.cat([tensors["attention_mask"],
                                               tail_mask.to(self.device)], dim=1)
        if "mm_token_type_ids" in tensors:
            tensors["mm_token_type_ids"] = self.inputs.types_of(tensors["input_ids"])
        # logits of the last prompt position predict the first answer token, and so on
        logits = self.model(**tensors, logits_to_keep=longest + 1).logits[:, :-1]
        results = []
        for row, (ids, spans) in enumerate(answers):
            targets = torch.tensor(ids)
            scores = {}
            for name, span in spans.items():
                scores[name] = judge(logits[row, span].cpu(), targets[span],
                                     margin=margin).as_dict()
            results.append(scores)
        return results

    def verify(self, image: np.ndarray, expected: dict[str, str]) -> dict[str, dict[str, object]]:
        """Verify one image's expected values (``nameplate read --expect``)."""
        return self.verify_batch([image], [expected])[0]


def _image_hash(image: np.ndarray) -> str:
    digest = hashlib.sha256(image.tobytes())
    digest.update(str(image.shape).encode())
    return digest.hexdigest()


def _char_ends(tokenizer: Any, ids: list[int]) -> list[int]:
    """Length of the decoded text after each token (maps characters back to tokens)."""
    return [len(tokenizer.decode(ids[: i + 1])) for i in range(len(ids))]
