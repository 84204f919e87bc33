"""Transport stage: typed, versioned messages on ZeroMQ sockets (JSON header + raw image bytes)."""

from appliance.transport.channels import (
    ChannelStats,
    ControlReceiver,
    FrameReceiver,
    Receiver,
    ResultReceiver,
    Sender,
)
from appliance.transport.codec import MessageError, decode, encode
from appliance.transport.messages import (
    PROTOCOL_VERSION,
    ControlMessage,
    FieldValue,
    FrameMessage,
    FrameQuality,
    ImageInfo,
    ReshootCommand,
    ResultMessage,
    TriggerCommand,
    new_id,
    utc_now,
)

__all__ = [
    "PROTOCOL_VERSION",
    "ChannelStats",
    "ControlMessage",
    "ControlReceiver",
    "FieldValue",
    "FrameMessage",
    "FrameQuality",
    "FrameReceiver",
    "ImageInfo",
    "MessageError",
    "Receiver",
    "ReshootCommand",
    "ResultMessage",
    "ResultReceiver",
    "Sender",
    "TriggerCommand",
    "decode",
    "encode",
    "new_id",
    "utc_now",
]
