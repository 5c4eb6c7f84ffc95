"""A file of a replay's estimations, so that fusion can be tried again without the networks.

A replay spends almost all its time in the networks; the facility state estimator takes
seconds over the same estimations. ``locowatch replay --estimations FILE`` keeps every
envelope the gateway produced (positions, series and plates of every flow, camera health),
and ``locowatch fuse --estimations FILE`` runs the flows' state estimators over it again,
with the FSE settings of whatever facility file it is given.

Format: the line ``locowatch-estimations 1``, then each envelope as a 4-byte little-endian
length followed by the ``locowatch.v1.Envelope`` protobuf bytes, in the order produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from locowatch.errors import UsageError
from locowatch.v1 import uplink_pb2

HEADER = b"locowatch-estimations 1\n"
LENGTH_BYTES = 4


def writing(
    out: BinaryIO, envelopes: Iterable[uplink_pb2.Envelope]
) -> Iterator[uplink_pb2.Envelope]:
    """``envelopes``, each written to ``out`` as it passes."""
    out.write(HEADER)
    for envelope in envelopes:
        data = envelope.SerializeToString()
        out.write(len(data).to_bytes(LENGTH_BYTES, "little"))
        out.write(data)
        yield envelope


def read_estimations(path: Path) -> Iterator[uplink_pb2.Envelope]:
    """Every envelope of an estimations file, in the order it was written."""
    with path.open("rb") as file:
        if file.read(len(HEADER)) != HEADER:
            raise UsageError(
                f"{path} is not an estimations file (`locowatch replay --estimations`)"
            )
        while prefix := file.read(LENGTH_BYTES):
            size = int.from_bytes(prefix, "little")
            data = file.read(size)
            if len(prefix) < LENGTH_BYTES or len(data) < size:
                raise UsageError(f"{path} ends inside an envelope: the replay writing it stopped")
            envelope = uplink_pb2.Envelope()
            envelope.ParseFromString(data)
            yield envelope
