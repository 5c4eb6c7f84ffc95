from locowatch.v1 import common_pb2 as _common_pb2
from locowatch.v1 import estimation_pb2 as _estimation_pb2
from locowatch.v1 import frames_pb2 as _frames_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LocateResponse(_message.Message):
    __slots__ = ("crops",)
    CROPS_FIELD_NUMBER: _ClassVar[int]
    crops: int
    def __init__(self, crops: _Optional[int] = ...) -> None: ...

class EstimatorInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EstimatorInfo(_message.Message):
    __slots__ = ("task", "provenance", "max_batch")
    TASK_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    task: str
    provenance: _common_pb2.Provenance
    max_batch: int
    def __init__(self, task: _Optional[str] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., max_batch: _Optional[int] = ...) -> None: ...
