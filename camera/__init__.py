"""Camera stage: capture daemon per station (``nameplate camera --station ID``)."""

from camera.daemon import CameraDaemon, open_source, run_camera
from camera.quality import measure_quality
from camera.sources import Capture, FolderSource, FrameSource, OpenCVSource, SourceError

__all__ = [
    "CameraDaemon",
    "Capture",
    "FolderSource",
    "FrameSource",
    "OpenCVSource",
    "SourceError",
    "measure_quality",
    "open_source",
    "run_camera",
]
