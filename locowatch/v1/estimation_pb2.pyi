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

class EndKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_KIND_UNSPECIFIED: _ClassVar[EndKind]
    END_KIND_REAL: _ClassVar[EndKind]
    END_KIND_CUT: _ClassVar[EndKind]

class BlindKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLIND_KIND_UNSPECIFIED: _ClassVar[BlindKind]
    BLIND_KIND_HIDDEN: _ClassVar[BlindKind]
    BLIND_KIND_OUT_OF_VIEW: _ClassVar[BlindKind]
END_KIND_UNSPECIFIED: EndKind
END_KIND_REAL: EndKind
END_KIND_CUT: EndKind
BLIND_KIND_UNSPECIFIED: BlindKind
BLIND_KIND_HIDDEN: BlindKind
BLIND_KIND_OUT_OF_VIEW: BlindKind

class OccupiedInterval(_message.Message):
    __slots__ = ("start_m", "end_m", "start_kind", "end_kind", "confidence")
    START_M_FIELD_NUMBER: _ClassVar[int]
    END_M_FIELD_NUMBER: _ClassVar[int]
    START_KIND_FIELD_NUMBER: _ClassVar[int]
    END_KIND_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    start_m: float
    end_m: float
    start_kind: EndKind
    end_kind: EndKind
    confidence: float
    def __init__(self, start_m: _Optional[float] = ..., end_m: _Optional[float] = ..., start_kind: _Optional[_Union[EndKind, str]] = ..., end_kind: _Optional[_Union[EndKind, str]] = ..., confidence: _Optional[float] = ...) -> None: ...

class PlateMark(_message.Message):
    __slots__ = ("metre", "height_m", "confidence")
    METRE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_M_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    metre: float
    height_m: float
    confidence: float
    def __init__(self, metre: _Optional[float] = ..., height_m: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class BlindSpan(_message.Message):
    __slots__ = ("start_m", "end_m", "kind")
    START_M_FIELD_NUMBER: _ClassVar[int]
    END_M_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    start_m: float
    end_m: float
    kind: BlindKind
    def __init__(self, start_m: _Optional[float] = ..., end_m: _Optional[float] = ..., kind: _Optional[_Union[BlindKind, str]] = ...) -> None: ...

class PositionEstimation(_message.Message):
    __slots__ = ("camera_id", "capture_time", "provenance", "covered", "intervals", "confidence", "blind", "plates")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BLIND_FIELD_NUMBER: _ClassVar[int]
    PLATES_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    capture_time: _timestamp_pb2.Timestamp
    provenance: _common_pb2.Provenance
    covered: _common_pb2.TrackSpan
    intervals: _containers.RepeatedCompositeFieldContainer[OccupiedInterval]
    confidence: float
    blind: _containers.RepeatedCompositeFieldContainer[BlindSpan]
    plates: _containers.RepeatedCompositeFieldContainer[PlateMark]
    def __init__(self, camera_id: _Optional[str] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., covered: _Optional[_Union[_common_pb2.TrackSpan, _Mapping]] = ..., intervals: _Optional[_Iterable[_Union[OccupiedInterval, _Mapping]]] = ..., confidence: _Optional[float] = ..., blind: _Optional[_Iterable[_Union[BlindSpan, _Mapping]]] = ..., plates: _Optional[_Iterable[_Union[PlateMark, _Mapping]]] = ...) -> None: ...

class AttributeCandidate(_message.Message):
    __slots__ = ("value", "confidence")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    value: str
    confidence: float
    def __init__(self, value: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class AttributeEstimation(_message.Message):
    __slots__ = ("camera_id", "capture_time", "provenance", "name", "value", "confidence", "track_id", "position_m", "alternatives")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_M_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    capture_time: _timestamp_pb2.Timestamp
    provenance: _common_pb2.Provenance
    name: str
    value: str
    confidence: float
    track_id: str
    position_m: float
    alternatives: _containers.RepeatedCompositeFieldContainer[AttributeCandidate]
    def __init__(self, camera_id: _Optional[str] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., name: _Optional[str] = ..., value: _Optional[str] = ..., confidence: _Optional[float] = ..., track_id: _Optional[str] = ..., position_m: _Optional[float] = ..., alternatives: _Optional[_Iterable[_Union[AttributeCandidate, _Mapping]]] = ...) -> None: ...

class EstimationBatch(_message.Message):
    __slots__ = ("positions", "attributes")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[PositionEstimation]
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeEstimation]
    def __init__(self, positions: _Optional[_Iterable[_Union[PositionEstimation, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[AttributeEstimation, _Mapping]]] = ...) -> None: ...
