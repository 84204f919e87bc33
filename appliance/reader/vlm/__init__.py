"""Generative reader: any transformers image-text-to-text model from a local folder.

``VLMReader`` (backend ``vlm``) reads the schema's fields as JSON with a capped
``max_new_tokens`` and verifies expected values by likelihood in one forward pass;
``CascadeReader`` (backend ``cascade``) asks it only about the fields the OCR reader is
unsure of.
"""

from appliance.reader.vlm.backend import VLMReader
from appliance.reader.vlm.cascade import CascadeReader

__all__ = ["CascadeReader", "VLMReader"]
