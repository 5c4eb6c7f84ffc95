import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from locowatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_ENCODING_UNSPECIFIED: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_JPEG: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_PNG: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_RAW_BGR8: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_RAW_GRAY8: _ClassVar[ImageEncoding]

class PacketKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PACKET_KIND_UNSPECIFIED: _ClassVar[PacketKind]
    PACKET_KIND_TRACK_STRIP: _ClassVar[PacketKind]
    PACKET_KIND_BODY_CROP: _ClassVar[PacketKind]
    PACKET_KIND_PLATE_CROP: _ClassVar[PacketKind]
IMAGE_ENCODING_UNSPECIFIED: ImageEncoding
IMAGE_ENCODING_JPEG: ImageEncoding
IMAGE_ENCODING_PNG: ImageEncoding
IMAGE_ENCODING_RAW_BGR8: ImageEncoding
IMAGE_ENCODING_RAW_GRAY8: ImageEncoding
PACKET_KIND_UNSPECIFIED: PacketKind
PACKET_KIND_TRACK_STRIP: PacketKind
PACKET_KIND_BODY_CROP: PacketKind
PACKET_KIND_PLATE_CROP: PacketKind

class Image(_message.Message):
    __slots__ = ("encoding", "width", "height", "data")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    encoding: ImageEncoding
    width: int
    height: int
    data: bytes
    def __init__(self, encoding: _Optional[_Union[ImageEncoding, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("camera_id", "frame_seq", "capture_time", "image")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQ_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    frame_seq: int
    capture_time: _timestamp_pb2.Timestamp
    image: Image
    def __init__(self, camera_id: _Optional[str] = ..., frame_seq: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class Packet(_message.Message):
    __slots__ = ("camera_id", "frame_seq", "capture_time", "kind", "span", "image", "unchanged", "change_score", "covered", "anchor_m", "window")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQ_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_SCORE_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_M_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    frame_seq: int
    capture_time: _timestamp_pb2.Timestamp
    kind: PacketKind
    span: _common_pb2.TrackSpan
    image: Image
    unchanged: bool
    change_score: float
    covered: _common_pb2.TrackSpan
    anchor_m: float
    window: str
    def __init__(self, camera_id: _Optional[str] = ..., frame_seq: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[PacketKind, str]] = ..., span: _Optional[_Union[_common_pb2.TrackSpan, _Mapping]] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., unchanged: _Optional[bool] = ..., change_score: _Optional[float] = ..., covered: _Optional[_Union[_common_pb2.TrackSpan, _Mapping]] = ..., anchor_m: _Optional[float] = ..., window: _Optional[str] = ...) -> None: ...

class PacketBatch(_message.Message):
    __slots__ = ("packets",)
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    packets: _containers.RepeatedCompositeFieldContainer[Packet]
    def __init__(self, packets: _Optional[_Iterable[_Union[Packet, _Mapping]]] = ...) -> None: ...

class PushFramesResponse(_message.Message):
    __slots__ = ("frames_received", "frames_rejected")
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_REJECTED_FIELD_NUMBER: _ClassVar[int]
    frames_received: int
    frames_rejected: int
    def __init__(self, frames_received: _Optional[int] = ..., frames_rejected: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("subscriber", "flow", "kinds", "camera_ids", "max_queue", "windows")
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    subscriber: str
    flow: str
    kinds: _containers.RepeatedScalarFieldContainer[PacketKind]
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    max_queue: int
    windows: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subscriber: _Optional[str] = ..., flow: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[PacketKind, str]]] = ..., camera_ids: _Optional[_Iterable[str]] = ..., max_queue: _Optional[int] = ..., windows: _Optional[_Iterable[str]] = ...) -> None: ...
