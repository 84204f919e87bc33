"""Inference stage: the resident reader process (``nameplate infer``)."""

from appliance.infer.service import InferenceService, run_inference

__all__ = ["InferenceService", "run_inference"]
