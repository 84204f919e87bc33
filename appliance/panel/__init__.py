"""Panel stage: the FastAPI operator panel (``nameplate panel``)."""

from appliance.panel.app import create_app, run_panel

__all__ = ["create_app", "run_panel"]
