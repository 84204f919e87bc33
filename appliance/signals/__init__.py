"""Line signals: the verdict to the line's PLC (a reject output over OPC UA or Modbus TCP)."""

from appliance.signals.plc import (
    LineSignals,
    ModbusWriter,
    OpcUaWriter,
    SignalError,
    build_signals,
)

__all__ = ["LineSignals", "ModbusWriter", "OpcUaWriter", "SignalError", "build_signals"]
