import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CameraState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_STATE_UNSPECIFIED: _ClassVar[CameraState]
    CAMERA_STATE_STARTING: _ClassVar[CameraState]
    CAMERA_STATE_STREAMING: _ClassVar[CameraState]
    CAMERA_STATE_STALLED: _ClassVar[CameraState]
    CAMERA_STATE_RECONNECTING: _ClassVar[CameraState]
    CAMERA_STATE_STOPPED: _ClassVar[CameraState]
CAMERA_STATE_UNSPECIFIED: CameraState
CAMERA_STATE_STARTING: CameraState
CAMERA_STATE_STREAMING: CameraState
CAMERA_STATE_STALLED: CameraState
CAMERA_STATE_RECONNECTING: CameraState
CAMERA_STATE_STOPPED: CameraState

class CameraHealth(_message.Message):
    __slots__ = ("camera_id", "observed_time", "state", "fps", "last_frame_time", "reconnects", "decode_errors", "message")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    LAST_FRAME_TIME_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    DECODE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    observed_time: _timestamp_pb2.Timestamp
    state: CameraState
    fps: float
    last_frame_time: _timestamp_pb2.Timestamp
    reconnects: int
    decode_errors: int
    message: str
    def __init__(self, camera_id: _Optional[str] = ..., observed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[CameraState, str]] = ..., fps: _Optional[float] = ..., last_frame_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reconnects: _Optional[int] = ..., decode_errors: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
