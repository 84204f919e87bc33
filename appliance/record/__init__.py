"""Rules and store stage in one process: the recorder (``nameplate record``)."""

from appliance.record.service import Recorder, run_recorder

__all__ = ["Recorder", "run_recorder"]
