"""Retrying database work with backoff (tenacity) while the server is down or restarting.

Ingest keeps trying forever: giving up would mean acking nothing and dropping the
stream, which the gateway would answer by reconnecting and resending the same batch.
Waiting instead holds the stream, and gRPC flow control pushes back to the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import psycopg
import psycopg_pool
from tenacity import RetryCallState

from cloud import metrics
from locowatch.backoff import Backoff

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
TRANSIENT = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
DATABASE_BACKOFF = Backoff(initial_s=0.2, max_s=10.0, jitter_s=1.0)


async def retry_database(what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in a worker thread; on a connection error wait (0.2 s .. 10 s) and retry."""

    def before_sleep(state: RetryCallState) -> None:
        metrics.DB_UP.set(0)
        metrics.DB_RETRIES.labels(what).inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s); retry %d", what, error, state.attempt_number)

    async for attempt in DATABASE_BACKOFF.async_retrying(TRANSIENT, before_sleep):
        with attempt:
            result = await asyncio.to_thread(func, *args, **kwargs)
    metrics.DB_UP.set(1)
    return result
