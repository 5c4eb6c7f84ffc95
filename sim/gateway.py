"""A simulated gateway uplink: streams numbered envelopes to cloud ingest, resumes after cuts.

Plays the edge's uplink for cloud tests, benchmarks and demos run without edge
services: it numbers envelopes, keeps every unacked one in memory (the real uplink
keeps them on disk), sends batches with a window of unacked batches in flight, and on
a broken stream reconnects and resends what the Welcome says is missing. A refused
(oversized) batch is split and resent.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import grpc

from locowatch.v1 import uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

_CLOSE = object()


@dataclass
class SendReport:
    """What the cloud said about everything sent."""

    sent: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[uplink_pb2.Rejection] = field(default_factory=list)
    refused_batches: int = 0
    reconnects: int = 0
    last_acked_seq: int = 0


class SimGateway:
    def __init__(
        self,
        target: str,
        gateway_id: str,
        facility_id: str,
        token: str,
        root_certificates: bytes | None = None,
        client_certificate: tuple[bytes, bytes] | None = None,
        batch_size: int = 500,
        window: int = 4,
        reconnect_for_s: float = 120.0,
        wait_for_ready: bool = True,
    ) -> None:
        self.target = target
        self.gateway_id = gateway_id
        self.facility_id = facility_id
        self.token = token
        self.root_certificates = root_certificates
        self.client_certificate = client_certificate  # (private key, chain), PEM
        self.batch_size = batch_size
        self.window = window
        self.reconnect_for_s = reconnect_for_s
        self.wait_for_ready = wait_for_ready  # False: fail at once when ingest is unreachable
        self.next_seq = 1

    def number(self, envelopes: Iterable[uplink_pb2.Envelope]) -> list[uplink_pb2.Envelope]:
        """Give envelopes their sequence numbers, as the uplink's durable queue does."""
        numbered = []
        for envelope in envelopes:
            envelope.seq = self.next_seq
            self.next_seq += 1
            numbered.append(envelope)
        return numbered

    def send(self, envelopes: list[uplink_pb2.Envelope]) -> SendReport:
        """Deliver numbered envelopes; reconnect and resume until all are acked."""
        report = SendReport(sent=len(envelopes))
        pending = list(envelopes)
        deadline = time.monotonic() + self.reconnect_for_s
        while pending:
            try:
                pending = self._stream(pending, report)
            except grpc.RpcError as exc:
                code = exc.code()
                if code not in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}:
                    raise
                if time.monotonic() > deadline:
                    raise
                report.reconnects += 1
                log.info("stream broke (%s); reconnecting", code.name)
                time.sleep(0.5)
        return report

    def open_channel(self) -> grpc.Channel:
        """A channel to ingest with this gateway's TLS settings (the caller closes it)."""
        if self.root_certificates is None:
            return grpc.insecure_channel(self.target)
        key, chain = self.client_certificate or (None, None)
        credentials = grpc.ssl_channel_credentials(self.root_certificates, key, chain)
        return grpc.secure_channel(self.target, credentials)

    def _stream(
        self, pending: list[uplink_pb2.Envelope], report: SendReport
    ) -> list[uplink_pb2.Envelope]:
        """One connection: send until everything is acked; return what is still unacked."""
        outbox: queue.Queue[object] = queue.Queue()
        hello = uplink_pb2.Hello(
            gateway_id=self.gateway_id, facility_id=self.facility_id, software_version="sim"
        )
        outbox.put(uplink_pb2.UplinkMessage(hello=hello))
        metadata = (("authorization", f"Bearer {self.token}"),)
        with self.open_channel() as channel:
            stub = uplink_pb2_grpc.IngestStub(channel)
            responses = stub.Stream(
                _drain(outbox), metadata=metadata, wait_for_ready=self.wait_for_ready
            )
            try:
                return self._converse(responses, outbox, pending, report)
            finally:
                outbox.put(_CLOSE)
                responses.cancel()

    def _converse(
        self,
        responses: Iterator[uplink_pb2.DownlinkMessage],
        outbox: queue.Queue[object],
        pending: list[uplink_pb2.Envelope],
        report: SendReport,
    ) -> list[uplink_pb2.Envelope]:
        welcome = next(responses).welcome
        report.duplicates += sum(1 for e in pending if e.seq <= welcome.last_seq)
        pending = [e for e in pending if e.seq > welcome.last_seq]
        if not pending:
            return []
        size = min(self.batch_size, welcome.max_batch_envelopes or self.batch_size)
        batches: dict[int, list[uplink_pb2.Envelope]] = {}
        ids = itertools.count(1)
        cursor = 0
        lock = threading.Lock()

        def fill() -> None:
            nonlocal cursor
            with lock:
                while len(batches) < self.window and cursor < len(pending):
                    chunk = pending[cursor : cursor + size]
                    cursor += len(chunk)
                    batch_id = next(ids)
                    batches[batch_id] = chunk
                    batch = uplink_pb2.Batch(batch_id=batch_id, envelopes=chunk)
                    outbox.put(uplink_pb2.UplinkMessage(batch=batch))

        fill()
        acked_upto = welcome.last_seq
        resend_from: int | None = None  # index in pending of the first refused envelope
        for message in responses:
            kind = message.WhichOneof("message")
            if kind == "ack":
                chunk = batches.pop(message.ack.batch_id)
                report.stored += message.ack.stored
                report.duplicates += message.ack.duplicates
                report.rejected += list(message.ack.rejected)
                acked_upto = max(acked_upto, chunk[-1].seq)
                report.last_acked_seq = acked_upto
            elif kind == "refused":
                # Ingest refuses this batch and every later one until it gets this one
                # again: when the window has drained, resend from here in smaller batches.
                report.refused_batches += 1
                chunk = batches.pop(message.refused.batch_id)
                size = max(1, min(size, message.refused.max_batch_envelopes))
                first = pending.index(chunk[0])
                resend_from = first if resend_from is None else min(resend_from, first)
            if batches:
                continue
            if resend_from is not None:
                cursor, resend_from = resend_from, None
            if cursor >= len(pending):
                return []
            fill()
        return [e for e in pending if e.seq > acked_upto]


def _drain(outbox: queue.Queue[object]) -> Iterator[uplink_pb2.UplinkMessage]:
    while True:
        item = outbox.get()
        if item is _CLOSE:
            return
        assert isinstance(item, uplink_pb2.UplinkMessage)
        yield item
