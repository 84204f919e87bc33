"""Synthetic nameplates: demo plates for the embedded default (and, later, training data)."""

from appliance.synth.demo import RenderedPlate, render_demo_plate
from appliance.synth.fonts import FontNotFound, font_path, installed_fonts

__all__ = ["FontNotFound", "RenderedPlate", "font_path", "installed_fonts", "render_demo_plate"]
