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
    AckCommand,
    ControlMessage,
    FieldValue,
    FrameMessage,
    FrameQuality,
    ImageInfo,
    QualityIssue,
    ReshootCommand,
    ReshootReason,
    ResultMessage,
    TriggerCommand,
    new_id,
    utc_now,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AckCommand",
    "ChannelStats",
    "ControlMessage",
    "ControlReceiver",
    "FieldValue",
    "FrameMessage",
    "FrameQuality",
    "FrameReceiver",
    "ImageInfo",
    "MessageError",
    "QualityIssue",
    "Receiver",
    "ReshootCommand",
    "ReshootReason",
    "ResultMessage",
    "ResultReceiver",
    "Sender",
    "TriggerCommand",
    "decode",
    "encode",
    "new_id",
    "utc_now",
]
