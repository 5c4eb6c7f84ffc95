"""The outbox: messages for plant systems, written with the facts they tell of, removed
once every sink has delivered them.

Each sink (``mqtt``, ``webhook:NAME``) reads rows after its own cursor in id order, and
moves the cursor only past rows its receiver acknowledged; so an outage of one receiver
delays its messages and nobody else's, and a crash between delivering and moving the
cursor resends (the message's key makes that harmless). ``prune`` deletes rows every
configured sink has passed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    facility_id: str
    flow: str
    kind: str  # event, alert
    key: str
    payload: dict[str, Any]

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


class Outbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def register(self, sinks: Sequence[str]) -> None:
        """A cursor for each sink (a new one has delivered nothing yet; a known one keeps
        its place)."""
        with self.pool.connection() as conn:
            for sink in sinks:
                conn.execute(
                    "INSERT INTO outbox_cursors (sink) VALUES (%s) ON CONFLICT DO NOTHING",
                    (sink,),
                )

    def pending(self, sink: str, limit: int = 500) -> list[OutboxItem]:
        """Rows after ``sink``'s cursor (``register`` it first), oldest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT o.id, o.facility_id, o.flow, o.kind, o.key, o.payload FROM outbox o "
                "WHERE o.id > (SELECT last_id FROM outbox_cursors WHERE sink = %s) "
                "ORDER BY o.id LIMIT %s",
                (sink, limit),
            ).fetchall()
        return [OutboxItem(*row) for row in rows]

    def delivered(self, sink: str, last_id: int) -> None:
        """Move ``sink``'s cursor to ``last_id`` (never back)."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE outbox_cursors SET last_id = greatest(last_id, %s), updated_at = now() "
                "WHERE sink = %s",
                (last_id, sink),
            )

    def prune(self, sinks: Sequence[str]) -> int:
        """Delete what every sink has delivered; rows no sink wants (none configured) stay
        until retention drops them."""
        if not sinks:
            return 0
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "DELETE FROM outbox WHERE id <= (SELECT min(last_id) FROM outbox_cursors "
                "WHERE sink = ANY(%s))",
                (list(sinks),),
            )
            return cursor.rowcount

    def backlog(self, sink: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM outbox WHERE id > coalesce((SELECT last_id FROM "
                "outbox_cursors WHERE sink = %s), 0)",
                (sink,),
            ).fetchone()
        return int(row[0]) if row else 0
