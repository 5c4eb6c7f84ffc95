"""The uplink protocol on one ingest stream: batches in sequence order, acks, refusals.

One implementation for the edge uplink (over the durable queue) and the twin's simulated
gateway (over ``MemoryQueue``). A conversation starts at the cloud's ``Welcome``: what
the cloud already has is deleted from the queue and sending resumes after it. Up to
``window`` batches wait for their acks; each ``Ack`` deletes its batch (stored,
duplicate or rejected: all are handled for good). A ``BatchRefused`` keeps the
envelopes: once the window has drained (ingest refuses every later batch too), sending
rewinds to the first refused envelope, in batches no larger than ingest's limit.

The caller moves the messages: ``next_message``/``fill`` give the next ``Batch`` to send,
``handle`` takes what ingest answers. Both may run in different threads.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from locowatch.v1 import uplink_pb2


class EnvelopeQueue(Protocol):
    """Where unacked envelopes wait, in sequence order."""

    def pending(self, after_seq: int, limit: int) -> list[uplink_pb2.Envelope]:
        """Up to ``limit`` envelopes numbered above ``after_seq``, in order."""
        ...

    def ack(self, up_to_seq: int) -> int:
        """Delete the envelopes numbered up to ``up_to_seq``; return how many."""
        ...


class ConversationEvents:
    """What a conversation tells its owner (counters, reports); the defaults ignore it."""

    def sent(self, envelopes: int) -> None:
        """A batch of ``envelopes`` went out."""

    def acked(self, ack: uplink_pb2.Ack, envelopes: int, last_seq: int) -> None:
        """Ingest acked a batch of ``envelopes`` ending at ``last_seq``; it is deleted."""

    def refused(self, refused: uplink_pb2.BatchRefused) -> None:
        """Ingest refused a batch whole; it will be resent."""


class ProtocolError(Exception):
    """Ingest answered something this conversation cannot follow; reconnect."""


@dataclass(frozen=True)
class _InFlight:
    first_seq: int
    last_seq: int
    envelopes: int


class Conversation:
    """The sending side of one ``Ingest.Stream``, after its ``Welcome``."""

    def __init__(
        self,
        queue: EnvelopeQueue,
        batch_envelopes: int,
        window: int,
        events: ConversationEvents | None = None,
    ) -> None:
        if batch_envelopes < 1 or window < 1:
            raise ValueError(f"batch_envelopes and window must be >= 1, got {batch_envelopes}")
        self.queue = queue
        self.window = window
        self.events = events or ConversationEvents()
        self._size = batch_envelopes
        self._lock = threading.Lock()
        self._welcomed = False
        self._cursor = 0  # highest sequence sent on this stream
        self._batches: dict[int, _InFlight] = {}
        self._ids = itertools.count(1)
        self._resend_after: int | None = None  # rewind here once the window has drained

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet acked or refused."""
        return len(self._batches)

    def welcome(self, welcome: uplink_pb2.Welcome) -> int:
        """Start after what the cloud has; return how many queued envelopes it already had."""
        with self._lock:
            if welcome.max_batch_envelopes:
                self._size = max(1, min(self._size, welcome.max_batch_envelopes))
            self._cursor = welcome.last_seq
            self._welcomed = True
            return self.queue.ack(welcome.last_seq)

    def next_message(self) -> uplink_pb2.UplinkMessage | None:
        """The next batch to send, or None while the window is full or nothing waits."""
        with self._lock:
            if not self._welcomed or len(self._batches) >= self.window:
                return None
            if self._resend_after is not None:
                if self._batches:
                    return None  # they will be refused too; wait for the window to drain
                self._cursor, self._resend_after = self._resend_after, None
            chunk = self.queue.pending(self._cursor, self._size)
            if not chunk:
                return None
            batch_id = next(self._ids)
            self._batches[batch_id] = _InFlight(chunk[0].seq, chunk[-1].seq, len(chunk))
            self._cursor = chunk[-1].seq
        self.events.sent(len(chunk))
        return uplink_pb2.UplinkMessage(batch=uplink_pb2.Batch(batch_id=batch_id, envelopes=chunk))

    def fill(self, send: Callable[[uplink_pb2.UplinkMessage], object]) -> int:
        """Send batches until the window is full or nothing waits; return how many."""
        sent = 0
        while (message := self.next_message()) is not None:
            send(message)
            sent += 1
        return sent

    def handle(self, message: uplink_pb2.DownlinkMessage) -> None:
        """Take ingest's answer to a batch: delete what it acked, rewind what it refused.

        Raises:
            ProtocolError: an answer to no batch in flight, a second Welcome, or a refusal
                that splitting cannot fix; the stream should be dropped and reopened.
        """
        kind = message.WhichOneof("message")
        if kind == "ack":
            ack = message.ack
            batch = self._pop(ack.batch_id)
            self.queue.ack(batch.last_seq)
            self.events.acked(ack, batch.envelopes, batch.last_seq)
        elif kind == "refused":
            refused = message.refused
            batch = self._pop(refused.batch_id)
            with self._lock:
                limit = refused.max_batch_envelopes
                if self._resend_after is None and batch.envelopes <= (limit or batch.envelopes):
                    # Not too big and nothing refused before it: a fresh stream is the fix
                    # (for example ingest waits for envelopes dropped at the disk bound).
                    raise ProtocolError(
                        f"ingest refused batch {refused.batch_id} of {batch.envelopes} "
                        f"envelopes (limit {limit}): {refused.reason}"
                    )
                if limit:
                    self._size = max(1, min(self._size, limit))
                rewind = batch.first_seq - 1
                if self._resend_after is None or rewind < self._resend_after:
                    self._resend_after = rewind
            self.events.refused(refused)
        else:
            raise ProtocolError(f"expected an Ack or BatchRefused from ingest, got {kind}")

    def _pop(self, batch_id: int) -> _InFlight:
        with self._lock:
            batch = self._batches.pop(batch_id, None)
        if batch is None:
            raise ProtocolError(f"ingest answered batch {batch_id}, which is not in flight")
        return batch


class MemoryQueue:
    """An ``EnvelopeQueue`` in memory, for the twin's simulated gateway and tests.

    Holds already numbered envelopes; ``ack`` moves a head index, so a long send costs no
    copying.
    """

    def __init__(self, envelopes: Iterable[uplink_pb2.Envelope] = ()) -> None:
        self._items = sorted(envelopes, key=lambda e: e.seq)
        self._seqs = [e.seq for e in self._items]
        self._head = 0

    def __len__(self) -> int:
        return len(self._items) - self._head

    def pending(self, after_seq: int, limit: int) -> list[uplink_pb2.Envelope]:
        start = bisect.bisect_right(self._seqs, after_seq, lo=self._head)
        return self._items[start : start + limit]

    def ack(self, up_to_seq: int) -> int:
        end = bisect.bisect_right(self._seqs, up_to_seq, lo=self._head)
        count, self._head = max(0, end - self._head), max(self._head, end)
        return count

    def remaining(self) -> list[uplink_pb2.Envelope]:
        """The envelopes not acked yet, in order."""
        return self._items[self._head :]
