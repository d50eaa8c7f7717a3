"""The Celeriac wire protocol: pure encode, decode and validate functions (SPEC.md).

Nothing here does I/O, starts threads or reads clocks; every transport and test drives it.
"""

from .errors import (
    ContentDisallowed,
    DecodeError,
    LimitExceeded,
    ProtocolError,
    UnsupportedCompression,
    UnsupportedContentType,
    ValidationError,
)
from .limits import DEFAULT_LIMITS, Limits
from .message import Embed, Properties, TaskHeaders, TaskMessage, new_task_message
from .serializers import DEFAULT_ACCEPT, SAFE_CONTENT_TYPES
from .wire import WireMessage, decode_body, decode_task, encode_task

#: Version of protocol/SPEC.md that this codec implements.
SPEC_VERSION = "1.0"

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_LIMITS",
    "SAFE_CONTENT_TYPES",
    "SPEC_VERSION",
    "ContentDisallowed",
    "DecodeError",
    "Embed",
    "LimitExceeded",
    "Limits",
    "Properties",
    "ProtocolError",
    "TaskHeaders",
    "TaskMessage",
    "UnsupportedCompression",
    "UnsupportedContentType",
    "ValidationError",
    "WireMessage",
    "decode_body",
    "decode_task",
    "encode_task",
    "new_task_message",
]
