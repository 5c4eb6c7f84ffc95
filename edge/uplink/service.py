"""The uplink service process: ``Uplink.Publish`` into the durable queue, and the forwarder.

``run_uplink`` wires the parts: the queue under ``gateway.data_dir/uplink``, the gRPC
server (health, reflection, metrics), the forwarder thread. The service is ready as soon
as the queue is open: publishing never waits for the cloud. SIGTERM or Ctrl-C stop it;
the queue is durable, so stopping loses nothing.
"""

from __future__ import annotations

import logging

import grpc

from edge.plan import GatewayPlan
from edge.service import EdgeServer, wait_for_signal
from edge.uplink import metrics
from edge.uplink.forwarder import Forwarder
from edge.uplink.queue import DurableQueue, QueueError
from locowatch.errors import UsageError
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = "locowatch.v1.Uplink"
QUEUE_FOLDER = "uplink"


class UplinkServicer(uplink_pb2_grpc.UplinkServicer):
    """Numbers and commits published envelopes; answers once they are on disk."""

    def __init__(self, queue: DurableQueue) -> None:
        self.queue = queue

    def Publish(  # noqa: N802 (gRPC method name)
        self, request: uplink_pb2.PublishRequest, context: grpc.ServicerContext
    ) -> uplink_pb2.PublishResponse:
        for index, envelope in enumerate(request.envelopes):
            if envelope.WhichOneof("payload") is None:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"envelopes[{index}] has no payload (position, attribute or camera_health)",
                )
        try:
            last_seq = self.queue.append(request.envelopes)
        except QueueError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return uplink_pb2.PublishResponse(last_seq=last_seq, dropped=self.queue.dropped)


def run_uplink(config: FacilityConfig, plan: GatewayPlan) -> None:
    """Run the uplink until SIGINT or SIGTERM."""
    gateway = config.gateway
    if gateway is None:
        raise UsageError("the facility file has no 'gateway' section; the uplink needs one")
    settings = gateway.uplink
    queue = DurableQueue(
        gateway.data_dir / QUEUE_FOLDER, max_bytes=int(settings.max_queue_mb * 1024 * 1024)
    )
    metrics.watch(queue)
    forwarder = Forwarder(
        queue,
        gateway.cloud,
        gateway.id,
        config.facility.id,
        batch_envelopes=settings.batch_envelopes,
        window=settings.window,
    )
    service = plan.uplink
    server = EdgeServer("uplink", service.host, service.port, service.metrics_port)
    server.add(uplink_pb2_grpc.add_UplinkServicer_to_server, UplinkServicer(queue), SERVICE_NAME)
    try:
        server.start()
        forwarder.start()
        server.set_ready(True)
        wait_for_signal()
    finally:
        server.stop()  # no Publish runs past this point
        forwarder.stop()
        queue.close()
        log.info("uplink stopped; %d envelopes wait in the queue", len(queue))
