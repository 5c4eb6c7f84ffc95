"""The Ingest gRPC service: one bidirectional stream per connected gateway.

A stream goes: authenticate (bearer token -> gateway and facility), Hello (must name
that gateway and facility), Welcome (the last sequence stored for it), then batches.
Each batch is checked envelope by envelope, stored in one transaction with the
gateway's sequence mark, and only then acked; stored records then feed the FSE.
Batches of one stream are handled one at a time and the next message is not read
before the ack, so a slow database slows the gateway (gRPC flow control) instead of
filling ingest's memory. A newer stream of the same gateway replaces an older one.

Envelopes already older than raw retention when they arrive (a gateway's backlog after a
long outage) are stored and fused like any other, and said so: a counter per gateway
and a log line with their age, since the next retention pass drops their raw rows.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc

from cloud import metrics
from cloud.config import CloudConfig, token_sha256
from cloud.fse_process import StateProcess
from cloud.records import Record, Rejected
from cloud.retry import retry_database
from cloud.store import DAY_S, PackedRows, Store, pack_records
from cloud.validation import FacilityCatalog, Validator, reject_reason
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 2  # checked batches waiting per stream (bounds memory per gateway)
PAST_RETENTION_LOG_EVERY_S = 60.0  # a backlog of old envelopes: a line a minute, not a batch


@dataclass(frozen=True)
class GatewayIdentity:
    gateway_id: str
    facility_id: str


@dataclass
class PastRetention:
    """Envelopes stored already past raw retention, since the last log line about them."""

    count: int = 0
    oldest_age_s: float = 0.0
    logged_at: float = float("-inf")


@dataclass
class StreamState:
    """What ingest tracks per open stream."""

    identity: GatewayIdentity
    validator: Validator
    checked_seq: int  # highest sequence checked (stored or on its way) for this gateway
    resend_from: int | None = None  # a refused batch started here; nothing later is taken
    past_retention: PastRetention = field(default_factory=PastRetention)


@dataclass
class CheckedBatch:
    """A batch split by the checks, waiting to be stored."""

    batch_id: int
    top_seq: int  # highest sequence in the batch (or before it)
    received: float  # ingest's clock when the batch was checked (POSIX seconds)
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    packed: PackedRows | None = None  # the records as COPY data, packed while checking
    past_retention: int = 0  # records older than raw retention already


class Authenticator:
    """Maps bearer tokens to gateways by their SHA-256 (constant-time comparison)."""

    def __init__(self, config: CloudConfig) -> None:
        self.entries = [
            (digest, GatewayIdentity(g.id, g.facility))
            for g in config.gateways
            for digest in g.token_hashes
        ]

    def identify(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> GatewayIdentity:
        values = [v for k, v in metadata or () if k == "authorization"]
        if not values:
            raise PermissionError("missing 'authorization: Bearer <token>' metadata")
        value = values[0] if isinstance(values[0], str) else values[0].decode()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise PermissionError("authorization must be 'Bearer <token>'")
        digest = token_sha256(token.strip())
        for known, identity in self.entries:
            if hmac.compare_digest(known, digest):
                return identity
        raise PermissionError("unknown gateway token")


class IngestService(uplink_pb2_grpc.IngestServicer):
    def __init__(
        self,
        config: CloudConfig,
        facilities: dict[str, FacilityConfig],
        store: Store,
        state: StateProcess,
    ) -> None:
        self.config = config
        self.auth = Authenticator(config)
        self.catalogs = {fid: FacilityCatalog.from_config(f) for fid, f in facilities.items()}
        self.store = store
        self.state = state
        self.streams: dict[str, asyncio.Task[None]] = {}

    async def Stream(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[uplink_pb2.UplinkMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[uplink_pb2.DownlinkMessage]:
        identity = await self._authenticate(context)
        hello = await self._hello(request_iterator, context, identity)
        await self._take_over(identity.gateway_id)
        metrics.STREAMS.inc()
        stream: StreamState | None = None
        try:
            last_seq = await retry_database(
                "read progress", self.store.last_seq, identity.gateway_id
            )
            limit = self.config.limits.max_batch_envelopes
            log.info(
                "gateway %s (facility %s, %s) connected; resuming after seq %d",
                identity.gateway_id,
                identity.facility_id,
                hello.software_version or "unknown version",
                last_seq,
            )
            yield uplink_pb2.DownlinkMessage(
                welcome=uplink_pb2.Welcome(last_seq=last_seq, max_batch_envelopes=limit)
            )
            stream = StreamState(
                identity,
                Validator(self.catalogs[identity.facility_id], identity.gateway_id),
                last_seq,
            )
            # Two stages: checking the next batch overlaps storing this one; the queue
            # between them is short, so a slow database stops the reading (backpressure).
            checked: asyncio.Queue[CheckedBatch | uplink_pb2.DownlinkMessage | None]
            checked = asyncio.Queue(maxsize=PIPELINE_DEPTH)
            reader = asyncio.create_task(self._read(request_iterator, context, stream, checked))
            try:
                while (item := await checked.get()) is not None:
                    if isinstance(item, CheckedBatch):
                        yield await self._store(item, stream)
                    else:
                        yield item
                await reader  # re-raise what ended the reading, if anything
            finally:
                reader.cancel()
        finally:
            metrics.STREAMS.dec()
            if stream is not None:
                self._report_past_retention(stream)
            if self.streams.get(identity.gateway_id) is asyncio.current_task():
                del self.streams[identity.gateway_id]
            log.info("gateway %s disconnected", identity.gateway_id)

    # -- stream set-up -------------------------------------------------------------------

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> GatewayIdentity:
        try:
            return self.auth.identify(context.invocation_metadata())
        except PermissionError as exc:
            metrics.AUTH_FAILURES.labels("token").inc()
            log.warning("refused a stream from %s: %s", context.peer(), exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise  # abort raises; this keeps type checkers informed

    async def _hello(
        self,
        request_iterator: AsyncIterator[uplink_pb2.UplinkMessage],
        context: grpc.aio.ServicerContext,
        identity: GatewayIdentity,
    ) -> uplink_pb2.Hello:
        try:
            first = await asyncio.wait_for(
                anext(request_iterator), self.config.limits.hello_timeout_s
            )
        except (TimeoutError, StopAsyncIteration):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected Hello first")
            raise
        if first.WhichOneof("message") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected Hello first")
        hello = first.hello
        if hello.gateway_id != identity.gateway_id or hello.facility_id != identity.facility_id:
            metrics.AUTH_FAILURES.labels("claim").inc()
            detail = (
                f"token belongs to gateway {identity.gateway_id!r} of facility "
                f"{identity.facility_id!r}; Hello claims gateway {hello.gateway_id!r} of "
                f"facility {hello.facility_id!r}"
            )
            log.warning("refused a stream: %s", detail)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, detail)
        return hello

    async def _take_over(self, gateway_id: str) -> None:
        """A gateway has one stream: a reconnect replaces a connection not yet seen dead."""
        old = self.streams.get(gateway_id)
        current = asyncio.current_task()
        if old is not None and old is not current and not old.done():
            log.info("gateway %s reconnected; closing its previous stream", gateway_id)
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
        if current is not None:
            self.streams[gateway_id] = current

    # -- batches -------------------------------------------------------------------------

    def _refusal(self, batch: uplink_pb2.Batch, stream: StreamState) -> str | None:
        """Why a batch is refused whole, if it is: too large, or ahead of a refused one."""
        limit = self.config.limits.max_batch_envelopes
        first = batch.envelopes[0].seq if batch.envelopes else 0
        if len(batch.envelopes) > limit:
            stream.resend_from = min(stream.resend_from or first, first)
            return f"batch of {len(batch.envelopes)} envelopes exceeds {limit}; split it"
        if stream.resend_from is not None:
            if first > stream.resend_from:  # storing it would skip the refused envelopes
                return f"waiting for seq {stream.resend_from} (refused earlier) to be resent"
            stream.resend_from = None
        return None

    async def _read(
        self,
        request_iterator: AsyncIterator[uplink_pb2.UplinkMessage],
        context: grpc.aio.ServicerContext,
        stream: StreamState,
        checked: asyncio.Queue[CheckedBatch | uplink_pb2.DownlinkMessage | None],
    ) -> None:
        try:
            async for message in request_iterator:
                if message.WhichOneof("message") != "batch":
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected a Batch")
                await checked.put(self._check(message.batch, stream))
        finally:
            await checked.put(None)

    def _check(
        self, batch: uplink_pb2.Batch, stream: StreamState
    ) -> CheckedBatch | uplink_pb2.DownlinkMessage:
        """Refuse the batch whole, or split it into records, rejections and duplicates."""
        identity = stream.identity
        reason = self._refusal(batch, stream)
        if reason is not None:
            metrics.REFUSED_BATCHES.labels(identity.facility_id).inc()
            log.warning(
                "gateway %s: batch %d refused: %s", identity.gateway_id, batch.batch_id, reason
            )
            refused = uplink_pb2.BatchRefused(
                batch_id=batch.batch_id,
                reason=reason,
                max_batch_envelopes=self.config.limits.max_batch_envelopes,
            )
            return uplink_pb2.DownlinkMessage(refused=refused)
        check, now = stream.validator.check, time.time()
        out = CheckedBatch(batch.batch_id, top_seq=stream.checked_seq, received=now)
        raw_cutoff = now - self.config.retention.raw_days * DAY_S
        for envelope in batch.envelopes:
            if envelope.seq <= out.top_seq:
                out.duplicates += 1  # resent after a reconnect, or out of order
                continue
            out.top_seq = envelope.seq
            outcome = check(envelope, now)
            if isinstance(outcome, Rejected):
                out.rejected.append(outcome)
            else:
                out.records.append(outcome)
                if outcome.time < raw_cutoff:
                    out.past_retention += 1
        stream.checked_seq = out.top_seq
        out.packed = pack_records(out.records) if out.records else None
        return out

    async def _store(self, batch: CheckedBatch, stream: StreamState) -> uplink_pb2.DownlinkMessage:
        """Write a checked batch durably, then ack it and hand its records to the FSE."""
        facility = stream.identity.facility_id
        stored, duplicates, fresh = 0, batch.duplicates, []
        if batch.records or batch.rejected:
            with metrics.BATCH_WRITE_SECONDS.time():
                written = await retry_database(
                    "store batch",
                    self.store.write_batch,
                    stream.identity.gateway_id,
                    facility,
                    batch.records,
                    batch.rejected,
                    batch.top_seq,
                    batch.packed,
                    batch.received,
                )
            stored, duplicates = written.stored, duplicates + written.duplicates
            fresh = [r for r in batch.records if r.origin.seq > written.previous_seq]
        self._count(facility, stored, duplicates, batch.rejected)
        # A gateway that stops is silent here too: alert on time() minus this.
        metrics.GATEWAY_LAST_BATCH.labels(
            facility, stream.identity.gateway_id
        ).set_to_current_time()
        if batch.past_retention and fresh:
            self._past_retention(stream, fresh, batch.received)
        ack = uplink_pb2.Ack(
            batch_id=batch.batch_id,
            stored=stored,
            duplicates=duplicates,
            rejected=[
                uplink_pb2.Rejection(
                    seq=r.origin.seq,
                    reason=reject_reason(r.reason),  # type: ignore[arg-type]
                    detail=r.detail,
                )
                for r in batch.rejected
            ],
        )
        if fresh:
            await self.state.feed(facility, fresh)
        return uplink_pb2.DownlinkMessage(ack=ack)

    def _past_retention(self, stream: StreamState, stored: list[Record], received: float) -> None:
        """Count stored records that were past raw retention already; a line a minute."""
        cutoff = received - self.config.retention.raw_days * DAY_S
        times = [r.time for r in stored if r.time < cutoff]
        if not times:
            return
        identity = stream.identity
        metrics.PAST_RETENTION.labels(identity.facility_id, identity.gateway_id).inc(len(times))
        late = stream.past_retention
        late.count += len(times)
        late.oldest_age_s = max(late.oldest_age_s, received - min(times))
        if received - late.logged_at >= PAST_RETENTION_LOG_EVERY_S:
            self._report_past_retention(stream, received)

    def _report_past_retention(self, stream: StreamState, now: float | None = None) -> None:
        """Log the envelopes past raw retention stored since the last such line, if any."""
        late = stream.past_retention
        if not late.count:
            return
        retention = self.config.retention
        age_days = late.oldest_age_s / DAY_S
        log.warning(
            "gateway %s: stored %d envelopes already older than raw retention (%d days), "
            "the oldest %.1f days old: the next retention pass drops their rows; %s",
            stream.identity.gateway_id,
            late.count,
            retention.raw_days,
            age_days,
            f"the state fused from them is kept ({retention.state_days} days)"
            if age_days < retention.state_days
            else f"they are past state retention too ({retention.state_days} days)",
        )
        stream.past_retention = PastRetention(logged_at=time.time() if now is None else now)

    def _count(self, facility: str, stored: int, duplicates: int, rejected: list[Rejected]) -> None:
        metrics.ENVELOPES.labels(facility, "stored").inc(stored)
        metrics.ENVELOPES.labels(facility, "duplicate").inc(duplicates)
        metrics.ENVELOPES.labels(facility, "rejected").inc(len(rejected))
        for r in rejected:
            metrics.REJECTIONS.labels(facility, r.reason).inc()
        if rejected:
            first = rejected[0]
            log.warning(
                "facility %s: rejected %d envelopes, first seq %d: %s: %s",
                facility,
                len(rejected),
                first.origin.seq,
                first.reason,
                first.detail,
            )
