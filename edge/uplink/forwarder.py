"""The forwarder: one ``Ingest.Stream`` to the cloud, fed from the durable queue.

A thread keeps the stream open. Each connection reads the token file again (a rotated
token takes effect at the next connect), says Hello, and resumes after the Welcome's
``last_seq``; the protocol itself (batches in sequence order, a window of unacked
batches, acks deleting, refusals split) is ``conversation.Conversation``. A Publish wakes
the sender at once (an event set by the queue), so nothing polls.

A failed or broken connection is retried with exponential backoff and jitter (tenacity:
0.5 s doubling to 15 s, plus up to 1 s at random so that the gateways of a restarted
ingest do not return in step), for ever: the queue holds the envelopes meanwhile.
A connection that worked (an ack, or 10 s up) starts the backoff afresh. A refused token
(``UNAUTHENTICATED``/``PERMISSION_DENIED``) is logged as an error naming the token file
and retried the same way, so fixing the file is enough.

Keepalive pings go every 5 minutes only: ingest's gRPC server, like any with default
settings, answers pings more frequent than that on an idle stream with GOAWAY
``too_many_pings``, which would cut the stream every few minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc
from tenacity import RetryCallState

from edge.service import describe_error
from edge.uplink import metrics
from edge.uplink.conversation import Conversation, ConversationEvents, ProtocolError
from edge.uplink.queue import DurableQueue
from locowatch import __version__
from locowatch.backoff import Backoff
from locowatch.facility.config import CloudEndpoint
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]
WELCOME_TIMEOUT_S = 30.0
HEALTHY_AFTER_S = 10.0  # a connection up this long counts as working (backoff starts afresh)
AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class StreamClosedError(Exception):
    """Ingest closed the stream (it is shutting down, or replaced this connection)."""


class Forwarder:
    """Sends the queue to cloud ingest from a thread named ``uplink:forwarder``.

    Args:
        queue: the durable queue; the forwarder deletes what ingest acks.
        cloud: where ingest is, TLS and the token file.
        gateway_id, facility_id: what the Hello claims (ingest checks them against the token).
        batch_envelopes: envelopes per batch (ingest's Welcome may lower it).
        window: batches sent and not yet acked.
        backoff_initial_s, backoff_max_s: reconnect waits (exponential, with jitter).
    """

    def __init__(
        self,
        queue: DurableQueue,
        cloud: CloudEndpoint,
        gateway_id: str,
        facility_id: str,
        batch_envelopes: int = 500,
        window: int = 4,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 15.0,
    ) -> None:
        self.queue = queue
        self.cloud = cloud
        self.hello = uplink_pb2.Hello(
            gateway_id=gateway_id,
            facility_id=facility_id,
            software_version=f"locowatch-uplink {__version__}",
        )
        self.batch_envelopes = batch_envelopes
        self.window = window
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._stop = threading.Event()
        self._wake = threading.Event()  # replaced per connection (see _requests)
        self._call: grpc.Future | None = None
        self._call_lock = threading.Lock()
        self._counters = _Counters()
        self._thread: threading.Thread | None = None
        self.connected = False
        queue.add_listener(self._wake_sender)

    def _wake_sender(self) -> None:
        self._wake.set()  # the current connection's event (each connection has its own)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uplink:forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the stream and end the thread; what is not acked stays in the queue."""
        self._stop.set()
        with self._call_lock:
            if self._call is not None:
                self._call.cancel()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- connecting ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            backoff = Backoff(initial_s=self.backoff_initial_s, max_s=self.backoff_max_s)
            retrying = backoff.retrying(self._stop, Exception, self._before_sleep)
            try:
                retrying(self._session)
            except Exception:
                if not self._stop.is_set():  # tenacity only gives up when asked to stop
                    log.exception("uplink forwarder failed; starting over")
            if not self._stop.is_set():
                metrics.RECONNECTS.inc()  # a working connection ended: reconnect at once

    def _before_sleep(self, state: RetryCallState) -> None:
        metrics.RECONNECTS.inc()
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if isinstance(error, grpc.RpcError) and error.code() in AUTH_CODES:
            log.error(
                "cloud ingest at %s refused gateway %s (%s); check its token in %s (read "
                "again at each attempt); retrying in %.1f s",
                self.cloud.endpoint,
                self.hello.gateway_id,
                describe_error(error),
                self.cloud.token_file,
                wait,
            )
        else:
            log.warning(
                "cannot stream to cloud ingest at %s (%s); retrying in %.1f s (attempt %d)",
                self.cloud.endpoint,
                describe_error(error),
                wait,
                state.attempt_number,
            )

    def _channel(self) -> grpc.Channel:
        if not self.cloud.tls:
            return grpc.insecure_channel(self.cloud.endpoint, options=CHANNEL_OPTIONS)
        roots = self.cloud.ca_file.read_bytes() if self.cloud.ca_file else None  # None: system
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.secure_channel(self.cloud.endpoint, credentials, options=CHANNEL_OPTIONS)

    def _session(self) -> None:
        """One connection, until it breaks. Returns when it had worked; raises when not."""
        if self._stop.is_set():
            return
        token = self.cloud.read_token().get_secret_value()
        wake = self._wake = threading.Event()
        closed = threading.Event()
        conversation = Conversation(self.queue, self.batch_envelopes, self.window, self._counters)
        started, acked_before = time.monotonic(), self._counters.batches_acked
        with self._channel() as channel:
            call = uplink_pb2_grpc.IngestStub(channel).Stream(
                self._requests(conversation, wake, closed),
                metadata=(("authorization", f"Bearer {token}"),),
                wait_for_ready=False,
            )
            with self._call_lock:
                self._call = call
            if self._stop.is_set():
                call.cancel()
            try:
                self._converse(call, conversation, wake)
            except (grpc.RpcError, ProtocolError, StreamClosedError) as exc:
                if not self.connected or self._stop.is_set():
                    raise
                up_s = time.monotonic() - started
                log.warning(
                    "disconnected from cloud ingest after %.0f s: %s", up_s, describe_error(exc)
                )
                if self._counters.batches_acked == acked_before and up_s < HEALTHY_AFTER_S:
                    raise  # connects, then fails at once: keep backing off
            finally:
                closed.set()
                wake.set()
                with self._call_lock:
                    self._call = None
                call.cancel()
                self.connected = False
                metrics.CONNECTED.set(0)

    def _converse(
        self, call: grpc.Future, conversation: Conversation, wake: threading.Event
    ) -> None:
        no_welcome = threading.Timer(WELCOME_TIMEOUT_S, call.cancel)
        no_welcome.start()
        try:
            first = next(call, None)
        except grpc.RpcError:
            if not no_welcome.is_alive() and not self._stop.is_set():
                raise ProtocolError(f"no Welcome within {WELCOME_TIMEOUT_S:.0f} s") from None
            raise
        finally:
            no_welcome.cancel()
        if first is None:
            raise StreamClosedError("ingest closed the stream before its Welcome")
        if first.WhichOneof("message") != "welcome":
            raise ProtocolError(f"expected a Welcome first, got {first.WhichOneof('message')}")
        welcome = first.welcome
        self.queue.resume_after(welcome.last_seq)
        known = conversation.welcome(welcome)
        metrics.ACKED.labels("duplicate").inc(known)
        self.connected = True
        metrics.CONNECTED.set(1)
        log.info(
            "connected to cloud ingest at %s (%s): it has this gateway's envelopes up to seq "
            "%d, %d wait here",
            self.cloud.endpoint,
            "TLS" if self.cloud.tls else "plaintext",
            welcome.last_seq,
            len(self.queue),
        )
        wake.set()
        for message in call:
            conversation.handle(message)
            wake.set()  # room in the window
        raise StreamClosedError("ingest closed the stream")

    def _requests(
        self, conversation: Conversation, wake: threading.Event, closed: threading.Event
    ) -> Iterator[uplink_pb2.UplinkMessage]:
        """What gRPC sends: the Hello, then each batch as the window and the queue allow."""
        yield uplink_pb2.UplinkMessage(hello=self.hello)
        while True:
            wake.clear()
            if closed.is_set():  # checked after clear(): a close can never be missed
                return
            message = conversation.next_message()
            if message is None:
                wake.wait()
            else:
                yield message


class _Counters(ConversationEvents):
    """Metrics and log lines for what ingest says about each batch."""

    def __init__(self) -> None:
        self.batches_acked = 0

    def sent(self, envelopes: int) -> None:
        metrics.SENT.inc(envelopes)

    def acked(self, ack: uplink_pb2.Ack, envelopes: int, last_seq: int) -> None:
        self.batches_acked += 1
        metrics.ACKED.labels("stored").inc(ack.stored)
        metrics.ACKED.labels("duplicate").inc(ack.duplicates)
        metrics.ACKED.labels("rejected").inc(len(ack.rejected))
        if not ack.rejected:
            return
        reasons: dict[str, int] = {}
        for rejection in ack.rejected:
            reason = _reason(rejection.reason)
            reasons[reason] = reasons.get(reason, 0) + 1
            metrics.REJECTED.labels(reason).inc()
        first = ack.rejected[0]
        log.warning(
            "ingest rejected %d of %d envelopes up to seq %d (%s); first: seq %d %s: %s",
            len(ack.rejected),
            envelopes,
            last_seq,
            ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())),
            first.seq,
            _reason(first.reason),
            first.detail,
        )

    def refused(self, refused: uplink_pb2.BatchRefused) -> None:
        metrics.REFUSED_BATCHES.inc()
        log.warning(
            "ingest refused batch %d whole (%s); resending it in batches of at most %d",
            refused.batch_id,
            refused.reason,
            refused.max_batch_envelopes,
        )


def _reason(value: int) -> str:
    try:
        return uplink_pb2.RejectReason.Name(value).removeprefix("REJECT_REASON_")
    except ValueError:
        return str(value)
