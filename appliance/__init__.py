"""Nameplate verification appliance: camera → transport → reader → rules → store → panel."""

__version__ = "0.1.0"
