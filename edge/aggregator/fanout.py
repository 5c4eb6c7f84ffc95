"""Fan packets out to every subscriber (estimators of every flow), each with a bounded queue.

A subscriber that falls behind loses its *oldest* packets (a newer view of the same camera
is worth more than an old one) and a counter says how many; memory stays bounded whatever
a subscriber does.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from edge.aggregator import metrics
from locowatch.v1 import frames_pb2

DEFAULT_QUEUE = 64


class Subscriber:
    def __init__(self, request: frames_pb2.SubscribeRequest) -> None:
        self.name = request.subscriber or "anonymous"
        self.flow = request.flow
        self.kinds = frozenset(request.kinds)
        self.cameras = frozenset(request.camera_ids)
        self.windows = frozenset(request.windows)
        self.queue: deque[frames_pb2.Packet] = deque(maxlen=request.max_queue or DEFAULT_QUEUE)
        self.dropped = 0
        self._ready = threading.Condition()

    def wants(self, packet: frames_pb2.Packet) -> bool:
        return (
            (not self.kinds or packet.kind in self.kinds)
            and (not self.cameras or packet.camera_id in self.cameras)
            and (not self.windows or not packet.window or packet.window in self.windows)
        )

    def offer(self, packet: frames_pb2.Packet) -> None:
        with self._ready:
            if len(self.queue) == self.queue.maxlen:
                self.dropped += 1
                metrics.PACKETS_DROPPED.labels(self.name).inc()
            self.queue.append(packet)
            self._ready.notify()

    def take(self, timeout_s: float) -> list[frames_pb2.Packet]:
        """Everything queued, oldest first; waits up to ``timeout_s`` for the first."""
        with self._ready:
            if not self.queue:
                self._ready.wait(timeout_s)
            packets = list(self.queue)
            self.queue.clear()
            return packets


class Fanout:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, request: frames_pb2.SubscribeRequest) -> Subscriber:
        subscriber = Subscriber(request)
        with self._lock:
            self._subscribers.append(subscriber)
            metrics.SUBSCRIBERS.set(len(self._subscribers))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            metrics.SUBSCRIBERS.set(len(self._subscribers))

    def wanted(self, packet: frames_pb2.Packet) -> bool:
        """Whether any subscriber would take ``packet`` (so that nobody's window is cut)."""
        with self._lock:
            return any(subscriber.wants(packet) for subscriber in self._subscribers)

    def publish(self, packets: Iterable[frames_pb2.Packet]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for packet in packets:
            metrics.PACKETS.labels(frames_pb2.PacketKind.Name(packet.kind)).inc()
            for subscriber in subscribers:
                if subscriber.wants(packet):
                    subscriber.offer(packet)
