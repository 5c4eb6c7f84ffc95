"""The reports analysts and ``locowatch report`` run: one SQL file per report, here.

Each file is plain SQL with named parameters (``%(facility)s``, ``%(flow)s``,
``%(from)s``, ``%(to)s``, ``%(bucket)s``, ``%(tz)s``), the same text docs/reports.md
shows, so an analyst can paste it into psql with the values filled in. They read only
through the read-only role's views and tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from locowatch.errors import UsageError

HERE = Path(__file__).parent
REPORTS = ("occupancy", "visits", "stays", "counts", "models")
HOURLY = ("occupancy", "counts")  # read from the hourly roll-ups: buckets of whole hours


@dataclass(frozen=True)
class ReportRange:
    facility: str
    flow: str
    start: datetime
    end: datetime
    bucket: str = "1 hour"
    tz: str = "UTC"

    def params(self) -> dict[str, Any]:
        return {
            "facility": self.facility,
            "flow": self.flow,
            "from": self.start,
            "to": self.end,
            "bucket": self.bucket,
            "tz": self.tz,
        }


def report_sql(name: str) -> str:
    if name not in REPORTS:
        raise UsageError(f"unknown report {name!r}; choose one of {', '.join(REPORTS)}")
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def run_report(url: str, name: str, where: ReportRange) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one report."""
    with psycopg.connect(url) as conn:
        return report_rows(conn, name, where)


def report_rows(
    conn: psycopg.Connection[Any], name: str, where: ReportRange
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One report on an open connection (times in the range's zone): columns and rows."""
    query = report_sql(name)
    conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(where.tz)))
    if name in HOURLY:
        _require_whole_hours(conn, where.bucket)
    cur = conn.execute(query, where.params())
    columns = [c.name for c in cur.description or ()]
    return columns, cur.fetchall()


def _require_whole_hours(conn: psycopg.Connection[Any], bucket: str) -> None:
    try:
        row = conn.execute("SELECT extract(epoch FROM %s::interval)", (bucket,)).fetchone()
    except psycopg.DataError as exc:
        raise UsageError(f"--bucket {bucket!r} is not an interval: {exc}") from exc
    seconds = float(row[0]) if row else 0.0
    if seconds < 3600 or seconds % 3600:
        raise UsageError(
            f"--bucket {bucket!r}: this report reads hourly roll-ups; "
            "give whole hours ('1 hour', '6 hours', '1 day')"
        )


def known_facilities(url: str) -> list[str]:
    """Facilities that ever sent data (from the small gateway progress table)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT DISTINCT facility_id FROM gateway_progress ORDER BY 1")
        return [r[0] for r in rows]
