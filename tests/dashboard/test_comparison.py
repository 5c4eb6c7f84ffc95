"""Flow disagreement, figures' labels and the users file, without a browser."""

from __future__ import annotations

import pytest

from dashboard.comparison import disagreement, pair_locomotives
from dashboard.figures import facility_map, loco_label, series_colours


def loco(track: str, tail: float, head: float, plate: str | None = None, series: str | None = None):  # type: ignore[no-untyped-def]
    return {"id": f"{track}-{tail}", "track": track, "tail_m": tail, "head_m": head,
            "plate": plate, "series": series}  # fmt: skip


def test_flows_that_agree_disagree_in_nothing() -> None:
    a = [loco("T1", 10, 28, "ТЭМ18-0001", "ТЭМ18"), loco("T2", 40, 57)]
    result = disagreement(a, list(a))
    assert (result.count_difference, result.paired, result.identity_mismatches) == (0, 2, 0)
    assert result.end_error_m == 0.0


def test_a_merge_pairs_once_and_counts_the_missing_locomotive() -> None:
    # dev fuses two locomotives 2 m apart into one body: one pair, one locomotive short.
    prod = [loco("T1", 10, 28), loco("T1", 30, 47)]
    dev = [loco("T1", 10, 47)]
    assert len(pair_locomotives(prod, dev)) == 1
    result = disagreement(prod, dev)
    assert result.count_difference == -1
    assert result.end_error_m == pytest.approx((0 + 19) / 2)  # paired with the larger overlap


def test_identity_differs_only_where_both_flows_read_it() -> None:
    prod = [loco("T1", 10, 28, "ТЭМ18-0001", "ТЭМ18"), loco("T2", 5, 20, "ЧМЭ3-0166")]
    dev = [loco("T1", 10.5, 28.2, "ТЭМ18-0007", "ТЭМ18"), loco("T2", 5, 20, None)]
    assert disagreement(prod, dev).identity_mismatches == 1
    assert disagreement(prod, [loco("T3", 10, 28)]).paired == 0  # another track never pairs


def test_bars_say_plate_and_series_or_the_id() -> None:
    assert loco_label(loco("T1", 1, 2, "2ТЭ116-0028", "2ТЭ116")) == "2ТЭ116-0028 · 2ТЭ116"
    assert loco_label(loco("T1", 1, 2)) == "T1-1"


def test_a_locomotive_out_of_sight_shows_where_it_can_be() -> None:
    from zoneinfo import ZoneInfo

    from sim.layout import build_layout

    facility = build_layout(0).config
    seen = {**loco("T1", 10, 28), "since": 0.0}
    hidden = {**loco("T2", 40, 57), "since": 0.0, "stale": True, "range_m": [31.5, 74.0]}
    figure = facility_map(facility, [seen, hidden], "map", ZoneInfo("UTC"), {})
    ranges, bars = figure.data
    assert (list(ranges.y), list(ranges.base), list(ranges.x)) == (["T2"], [31.5], [42.5])
    assert "somewhere in 31.5-74.0 m" in ranges.hovertext[0]
    assert list(bars.y) == ["T1", "T2"]  # every locomotive is still its own bar
    assert "somewhere in 31.5-74.0 m" in bars.hovertext[1] and "somewhere" not in bars.hovertext[0]


def test_series_keep_distinct_colours() -> None:
    names = ["ЧМЭ3", "ТЭМ18", "ТЭП70", "ВЛ80С", "2ТЭ116", "2ТЭ25А"]
    colours = series_colours(names)
    assert len(set(colours.values())) == len(names)
    assert series_colours(list(reversed(names))) == colours


def test_overlapping_stays_at_a_station_get_lanes() -> None:
    from datetime import UTC, datetime

    from dashboard.figures import station_lanes
    from dashboard.queries import Stay

    def stay(station: str, start_h: int, end_h: int) -> Stay:
        day = datetime(2026, 11, 2, tzinfo=UTC)
        return Stay(station, "T1", f"loco-{start_h}", None, None,
                    day.replace(hour=start_h), day.replace(hour=end_h))  # fmt: skip

    stays = [stay("S1", 1, 5), stay("S1", 3, 8), stay("S1", 6, 9), stay("S2", 2, 4)]
    lane, lanes = station_lanes(stays)
    assert lane == [0, 1, 0, 0]  # the third reuses the first's lane once it left
    assert lanes == {"S1": 2, "S2": 1}
