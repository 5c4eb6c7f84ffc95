"""A simulated gateway uplink: streams numbered envelopes to cloud ingest, resumes after cuts.

Plays the edge's uplink for cloud tests, benchmarks and demos run without edge
services: it numbers envelopes, keeps every unacked one in memory (the real uplink
keeps them on disk) and speaks the edge uplink's own protocol
(``edge.uplink.conversation``: a window of unacked batches, refused batches resent
split); on a broken stream it reconnects and resends what the Welcome says is missing.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import grpc

from edge.uplink.conversation import Conversation, ConversationEvents, MemoryQueue
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
        pending = MemoryQueue(envelopes)
        deadline = time.monotonic() + self.reconnect_for_s
        while len(pending):
            try:
                self._stream(pending, report)
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

    def _stream(self, pending: MemoryQueue, report: SendReport) -> None:
        """One connection: send until everything is acked or the stream ends."""
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
                self._converse(responses, outbox, pending, report)
            finally:
                outbox.put(_CLOSE)
                responses.cancel()

    def _converse(
        self,
        responses: Iterator[uplink_pb2.DownlinkMessage],
        outbox: queue.Queue[object],
        pending: MemoryQueue,
        report: SendReport,
    ) -> None:
        """The edge uplink's own protocol (``edge.uplink.conversation``) over memory."""
        conversation = Conversation(pending, self.batch_size, self.window, _Reporter(report))
        report.duplicates += conversation.welcome(next(responses).welcome)
        while len(pending):
            conversation.fill(outbox.put)
            message = next(responses, None)
            if message is None:
                return  # ingest ended the stream; send() opens another
            conversation.handle(message)


class _Reporter(ConversationEvents):
    """Adds what ingest says about each batch to a ``SendReport``."""

    def __init__(self, report: SendReport) -> None:
        self.report = report

    def acked(self, ack: uplink_pb2.Ack, envelopes: int, last_seq: int) -> None:
        self.report.stored += ack.stored
        self.report.duplicates += ack.duplicates
        self.report.rejected += list(ack.rejected)
        self.report.last_acked_seq = max(self.report.last_acked_seq, last_seq)

    def refused(self, refused: uplink_pb2.BatchRefused) -> None:
        self.report.refused_batches += 1


def _drain(outbox: queue.Queue[object]) -> Iterator[uplink_pb2.UplinkMessage]:
    while True:
        item = outbox.get()
        if item is _CLOSE:
            return
        assert isinstance(item, uplink_pb2.UplinkMessage)
        yield item
