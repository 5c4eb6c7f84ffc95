from locowatch.v1 import estimation_pb2 as _estimation_pb2
from locowatch.v1 import health_pb2 as _health_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_NOT_FINITE: _ClassVar[RejectReason]
    REJECT_REASON_OUT_OF_RANGE: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_CAMERA: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_TRACK: _ClassVar[RejectReason]
    REJECT_REASON_MALFORMED: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_FLOW: _ClassVar[RejectReason]
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_NOT_FINITE: RejectReason
REJECT_REASON_OUT_OF_RANGE: RejectReason
REJECT_REASON_UNKNOWN_CAMERA: RejectReason
REJECT_REASON_UNKNOWN_TRACK: RejectReason
REJECT_REASON_MALFORMED: RejectReason
REJECT_REASON_UNKNOWN_FLOW: RejectReason

class Envelope(_message.Message):
    __slots__ = ("seq", "position", "attribute", "camera_health")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_HEALTH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    position: _estimation_pb2.PositionEstimation
    attribute: _estimation_pb2.AttributeEstimation
    camera_health: _health_pb2.CameraHealth
    def __init__(self, seq: _Optional[int] = ..., position: _Optional[_Union[_estimation_pb2.PositionEstimation, _Mapping]] = ..., attribute: _Optional[_Union[_estimation_pb2.AttributeEstimation, _Mapping]] = ..., camera_health: _Optional[_Union[_health_pb2.CameraHealth, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("gateway_id", "facility_id", "software_version")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    FACILITY_ID_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    facility_id: str
    software_version: str
    def __init__(self, gateway_id: _Optional[str] = ..., facility_id: _Optional[str] = ..., software_version: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("batch_id", "envelopes")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    envelopes: _containers.RepeatedCompositeFieldContainer[Envelope]
    def __init__(self, batch_id: _Optional[int] = ..., envelopes: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ...) -> None: ...

class UplinkMessage(_message.Message):
    __slots__ = ("hello", "batch")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    batch: Batch
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("last_seq", "max_batch_envelopes")
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    last_seq: int
    max_batch_envelopes: int
    def __init__(self, last_seq: _Optional[int] = ..., max_batch_envelopes: _Optional[int] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("seq", "reason", "detail")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    seq: int
    reason: RejectReason
    detail: str
    def __init__(self, seq: _Optional[int] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("batch_id", "rejected", "stored", "duplicates")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    stored: int
    duplicates: int
    def __init__(self, batch_id: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., stored: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class BatchRefused(_message.Message):
    __slots__ = ("batch_id", "reason", "max_batch_envelopes")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    reason: str
    max_batch_envelopes: int
    def __init__(self, batch_id: _Optional[int] = ..., reason: _Optional[str] = ..., max_batch_envelopes: _Optional[int] = ...) -> None: ...

class DownlinkMessage(_message.Message):
    __slots__ = ("welcome", "ack", "refused")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    ack: Ack
    refused: BatchRefused
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., refused: _Optional[_Union[BatchRefused, _Mapping]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[Envelope]
    def __init__(self, envelopes: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("last_seq", "dropped")
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    last_seq: int
    dropped: int
    def __init__(self, last_seq: _Optional[int] = ..., dropped: _Optional[int] = ...) -> None: ...
