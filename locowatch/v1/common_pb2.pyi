from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TrackSpan(_message.Message):
    __slots__ = ("track_id", "start_m", "end_m")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    START_M_FIELD_NUMBER: _ClassVar[int]
    END_M_FIELD_NUMBER: _ClassVar[int]
    track_id: str
    start_m: float
    end_m: float
    def __init__(self, track_id: _Optional[str] = ..., start_m: _Optional[float] = ..., end_m: _Optional[float] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("flow", "model_version", "engine")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    flow: str
    model_version: str
    engine: str
    def __init__(self, flow: _Optional[str] = ..., model_version: _Optional[str] = ..., engine: _Optional[str] = ...) -> None: ...
