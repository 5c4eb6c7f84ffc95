"""Follow the locomotives of one track from one fused picture to the next.

Each tick the tracker gets the track's bodies (``fusion.TrackView``) and:

1. predicts every known locomotive forward with its speed;
2. pairs bodies with locomotives by overlap. A body that spans two locomotives (their
   gap hidden or misjudged) is cut between them; bodies that all overlap one locomotive
   (an occluder split it) are joined; a body longer than a locomotive's learned length
   is cut at hidden track beyond its ends (fusion bridged two there);
3. updates each paired locomotive's ends: a real end is a measurement (smoothed); a cut
   end that runs into unknown track keeps what the tracker knew (its remembered end, or
   the other end plus its learned length), so a locomotive under a dead camera keeps its
   size and place;
4. keeps an unpaired locomotive that nobody can see (marked stale after a while), lets
   one seen gone from mid-track linger ``depart_after_s`` (estimators miss bodies), and
   lets one that drove out past a track end leave at once;
5. starts a locomotive for an unpaired body: at once where one can appear (a track end,
   track that was unknown, the first ticks), after a few ticks elsewhere (noise);
6. derives events: arrived, moved, stopped (at a station), departed.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from cloud.fse.fusion import END_SNAP_M, ENTRY_M, GRID_M, MAX_BODY_M, Body, TrackView
from cloud.fse.identity import Identity, taken_from
from locowatch.facility.config import FseSettings
from locowatch.facility.visibility import subtract_spans

END_GAIN_STILL = 0.4  # weight of a new real-end measurement against the prediction...
END_GAIN_MOVING = 0.8  # ... more while moving: speed changes make predictions drift
SPEED_GAIN = 0.6
MIN_SPEED_BASE_S = 0.3  # measurements closer in time than this give no speed
HIDE_SHARE = 0.75  # unseen track this share of the shortest locomotive can hide one
FACES_SLACK_M = 1.5  # a body between two real faces may read this much shorter than it is
STANDSTILL_MPS = 0.08
EDGE_ZONE_M = 3.0  # a body this close to a track end may be arriving or leaving
CONFIRM_TICKS = 3
CLAIM_SHARE = 0.25
COAST_S = 2.0  # an unseen locomotive keeps its speed this long
EXIT_HORIZON_S = 10.0  # ... or until it leaves, if that is due within this long
UNSEEN_EXIT_S = 60.0  # ... or this long, if no camera judges the track to the door
MIN_SURE_M = 3.0  # shorter new bodies away from a track end wait for confirmation
NEAR_M = 2.0  # an unpaired body this close to a locomotive is still that locomotive
MAX_SPEED_MPS = 4.0  # depot speeds stay under ~1.5 m/s; more is a measurement glitch
LEAVE_AFTER_S = 2.0  # gone near a track end this long: it has left
REACQUIRE_M = 30.0  # a locomotive lost in unseen track (a camera's span) is found this far on
REVEAL_M = 5.0  # a body this near an unseen locomotive, where it can be, is that one
OVERLONG_M = 4.0  # a body this much longer than a locomotive's learned length holds more
SETTLE_S = 10.0  # the doorways nobody sees are known once what cameras have in view stops growing
# Two neighbours on one body, the track between them seen occupied with no real end in
# it for this long, are one locomotive (a false real end once kept them apart)...
SEEN_AS_ONE_S = 10.0
SEEN_AS_ONE_SHARE = 0.95  # ... when cameras judge this share of the track between them
SEEN_AS_ONE_GAP_S = 1.5  # ticks apart longer than this do not continue the count


@dataclass(frozen=True)
class Event:
    time: float
    kind: str  # arrived, moved, stopped, identified, departed
    loco_id: str
    track_id: str
    tail_m: float
    head_m: float
    station_id: str | None
    series: str | None = None
    plate: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(eq=False)  # identity matters: two locomotives may stand in the same place
class Locomotive:
    id: str
    track_id: str
    tail_m: float
    head_m: float
    since: float
    last_seen: float
    speed_mps: float = 0.0
    lengths: deque[float] = field(default_factory=lambda: deque(maxlen=25))
    last_real: dict[str, tuple[float, float]] = field(default_factory=dict)  # side: (m, time)
    ends_seen: set[str] = field(default_factory=set)  # sides a camera ever saw as a real end
    last_faces: frozenset[str] = frozenset()  # sides seen as real ends at its last sighting
    missing_since: float | None = None
    range_m: tuple[float, float] | None = None  # out of sight: the stretch it can be in
    went: int = 0  # out of sight past the face seen last: +1 up the track, -1 down
    stale: bool = False
    confirmed: bool = True
    sightings: int = 1
    moving: bool = False
    rest_centre_m: float = 0.0
    still_since: float | None = None
    lost_speed_mps: float = 0.0  # its speed when it went out of sight (then assumed stopped)
    identity: Identity = field(default_factory=Identity)
    identified: dict[str, str] = field(default_factory=dict)  # reported in events so far
    # name -> (value, share), refreshed once per tick
    resolved: dict[str, tuple[str, float]] = field(default_factory=dict)
    # the neighbour ahead -> (since, last tick) the track between them looked like one body
    one_with: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def centre_m(self) -> float:
        return (self.tail_m + self.head_m) / 2

    @property
    def length_m(self) -> float | None:
        """Learned from ticks where both real ends were seen at once."""
        return statistics.median(self.lengths) if len(self.lengths) >= 3 else None

    def overlap(self, tail_m: float, head_m: float) -> float:
        return max(0.0, min(self.head_m, head_m) - max(self.tail_m, tail_m))

    def distance(self, tail_m: float, head_m: float) -> float:
        """Gap between this locomotive and a span; 0 when they overlap."""
        return max(0.0, tail_m - self.head_m, self.tail_m - head_m)


StationOf = Callable[[str, float, float], str | None]


class TrackTracker:
    def __init__(
        self,
        track_id: str,
        length_m: float,
        settings: FseSettings,
        station_of: StationOf,
        new_id: Callable[[], str],
        doors: tuple[str, ...] = ("start", "end"),
    ) -> None:
        self.track_id = track_id
        self.length_m = length_m
        self.doors = doors
        self.settings = settings
        self.station_of = station_of
        self.new_id = new_id
        self.locos: list[Locomotive] = []
        self.last_tick: float | None = None
        self.ticks = 0
        self.previous: TrackView | None = None
        self.view: TrackView | None = None  # this tick's
        # metres some camera has ever had in view: the doorways beyond are seen by no
        # camera (known once they stop changing: cameras come up one by one)
        self.in_view_from_m, self.in_view_to_m = length_m, 0.0
        self.doorways_since = math.inf
        # pieces of a locomotive's body split off this tick at facing real ends (``_apart``)
        self.split_off: list[Body] = []

    # -- one tick -----------------------------------------------------------------------

    def tick(self, t: float, view: TrackView) -> list[Event]:
        dt = 0.0 if self.last_tick is None else max(t - self.last_tick, 0.0)
        self.last_tick = t
        self.ticks += 1
        self.view = view
        if view.in_view_m is not None:
            first, last = view.in_view_m
            if first < self.in_view_from_m or last > self.in_view_to_m:
                self.in_view_from_m = min(self.in_view_from_m, first)
                self.in_view_to_m = max(self.in_view_to_m, last)
                self.doorways_since = t
        for loco in self.locos:
            loco.tail_m += loco.speed_mps * dt
            loco.head_m += loco.speed_mps * dt
        pairs, unpaired = self._associate(view.bodies)
        unpaired = self._reacquire(unpaired, pairs, view)
        events: list[Event] = []
        for loco, body in pairs.items():
            events += self._update(loco, body, t, view)
            if loco.tail_m >= self.length_m or loco.head_m <= 0:
                events += self._depart(loco, t, "drove out")
        for loco in [lo for lo in self.locos if lo not in pairs]:
            events += self._unseen(loco, t, view)
        for body in unpaired:
            events += self._birth(body, t, view)
        self._merge_overlapping()
        for loco in self.locos:
            if loco.confirmed:
                events += self._motion_events(loco, t)
        self.previous = view
        return events

    def identify(self, t: float, owned: Mapping[str, Mapping[str, str]]) -> list[Event]:
        """Refresh what each confirmed locomotive is reported as; ``owned``: who holds
        each unique value (a plate) in the whole facility, by locomotive id."""
        events: list[Event] = []
        for loco in self.locos:
            if loco.confirmed:
                events += self._identity_events(loco, t, taken_from(owned, loco.id))
        return events

    def visible(self) -> list[Locomotive]:
        """Locomotives to report: confirmed ones."""
        return sorted((lo for lo in self.locos if lo.confirmed), key=lambda lo: lo.tail_m)

    # -- association ---------------------------------------------------------------------

    def _associate(self, bodies: list[Body]) -> tuple[dict[Locomotive, Body], list[Body]]:
        """Pair bodies with locomotives; cut bodies spanning several, join pieces of one."""
        claims: dict[int, list[Body]] = {}
        unpaired: list[Body] = []
        self.split_off = []
        ordered = sorted(self.locos, key=lambda lo: lo.tail_m)
        for body in bodies:
            # A locomotive claims (part of) a body when the body covers a good share of it;
            # a prediction that overshoots a little into its neighbour's body does not.
            # One out of sight claims only bodies where it can be.
            hits = [
                lo
                for lo in ordered
                if lo.overlap(body.tail_m, body.head_m) >= CLAIM_SHARE * (lo.head_m - lo.tail_m)
                and (not lo.went or _within(body, lo.range_m))
            ]
            if not hits:  # a sliver, or a body the prediction overshot: the nearest within reach
                near = sorted(
                    (lo.distance(body.tail_m, body.head_m), index)
                    for index, lo in enumerate(ordered)
                    if not lo.went or _within(body, lo.range_m)
                )
                hits = [ordered[near[0][1]]] if near and near[0][0] <= NEAR_M else []
            if not hits:
                unpaired.append(body)
                continue
            hits = self._join_fragments(hits, ordered, claims)
            for loco, piece in zip(hits, _cut(body, hits), strict=True):
                claims.setdefault(id(loco), []).append(piece)
        pairs = {}
        for loco in ordered:
            pieces = claims.get(id(loco))
            if pieces:
                kept, others = _apart(loco, pieces, self._shortest_between_faces_m)
                body = _join(kept)
                if others:
                    split = [_join(group) for group in others]
                    self.split_off += split
                    unpaired += split
                    _shed(loco, body, others)
                pairs[loco], beyond = self._trim_overlong(loco, body)
                unpaired += beyond
        return pairs, unpaired

    def _trim_overlong(self, loco: Locomotive, body: Body) -> tuple[Body, list[Body]]:
        """A body longer than the locomotive's learned length runs on across track nobody
        judges (fusion bridges hidden stretches when nothing says two stand there): what
        lies beyond such a stretch past the locomotive's ends is another locomotive."""
        length, view = loco.length_m, self.view
        if length is None or view is None or body.length_m <= length + OVERLONG_M:
            return body, []
        holes = [h for h in _unjudged(view, body.tail_m, body.head_m) if h[1] - h[0] >= NEAR_M]
        beyond = []  # (a side we cut between two locomotives has nothing beyond it)
        behind = [h for h in holes if h[0] > body.tail_m and h[1] <= loco.tail_m + NEAR_M]
        if behind and not body.tail_split:
            hole = max(behind, key=lambda h: h[1])
            beyond.append(replace(body, head_m=hole[0], head_real=False, head_open=True))
            body = replace(body, tail_m=hole[1], tail_real=False, tail_open=True)
        ahead = [h for h in holes if h[1] < body.head_m and h[0] >= loco.head_m - NEAR_M]
        if ahead and not body.head_split:
            hole = min(ahead, key=lambda h: h[0])
            beyond.append(replace(body, tail_m=hole[1], tail_real=False, tail_open=True))
            body = replace(body, head_m=hole[0], head_real=False, head_open=True)
        return body, beyond

    def _join_fragments(
        self, hits: list[Locomotive], ordered: list[Locomotive], claims: dict[int, list[Body]]
    ) -> list[Locomotive]:
        """Neighbours on one body whose facing ends no camera ever saw as real ends are
        pieces of one locomotive, not two: each was born from a view cut at track nobody
        could see yet (cameras coming up one by one). Cutting the body between them
        would keep them apart for good, so they become one."""
        joined = [hits[0]]
        for loco in hits[1:]:
            before = joined[-1]
            if self._kept_apart(before, loco):
                joined.append(loco)
                continue
            faced = _faced(before, loco)
            keep, drop = self._absorb(before, loco)
            if faced:  # what it learned of its length was one of the two pieces
                keep.lengths.clear()
            ordered.remove(drop)
            claims.setdefault(id(keep), []).extend(claims.pop(id(drop), []))
            joined[-1] = keep
        return joined

    def _kept_apart(self, before: Locomotive, after: Locomotive) -> bool:
        """Two neighbours on one body stay two while a camera's real end between them
        holds: one ever seen at their facing ends, unless the track between has looked
        like one body for a while, or at once for a candidate not yet confirmed (split off
        at ends no camera sees now: a door's jambs read as ends for a tick)."""
        if not _faced(before, after):
            return False
        if not (before.confirmed and after.confirmed) and self._one_body_now(before, after):
            return False
        return not self._seen_as_one(before, after)

    def _seen_as_one(self, before: Locomotive, after: Locomotive) -> bool:
        """Cameras have judged the track between two neighbours on one body, and no real
        end in it, for ``SEEN_AS_ONE_S``: a real end seen there once (a section joint, a
        nearer locomotive's edge) made one locomotive two, and nothing says so now."""
        t = self.last_tick or 0.0
        since, last = before.one_with.get(after.id, (t, t))
        if not self._one_body_now(before, after):
            before.one_with.pop(after.id, None)
            return False
        if t - last > SEEN_AS_ONE_GAP_S:  # not on one body in between: start again
            since = t
        before.one_with[after.id] = (since, t)
        return t - since >= SEEN_AS_ONE_S

    def _one_body_now(self, before: Locomotive, after: Locomotive) -> bool:
        """Cameras judge the track between two neighbours on one body and see no real end
        in it (within END_SNAP_M of either facing end), and together they are no longer
        than a locomotive."""
        view = self.view
        lo = min(before.head_m, after.tail_m) - END_SNAP_M
        hi = max(before.head_m, after.tail_m) + END_SNAP_M
        return (
            view is not None
            and after.head_m - before.tail_m <= MAX_BODY_M
            and view.known_fraction(lo, hi) >= SEEN_AS_ONE_SHARE
            and not any(lo <= m <= hi for m in view.real_ends_m)
        )

    def _reacquire(
        self, bodies: list[Body], pairs: dict[Locomotive, Body], view: TrackView
    ) -> list[Body]:
        """A body coming out of unseen track (a dark camera beside it), cut on that side,
        is the locomotive last seen driving into that stretch towards it: the same one,
        moved on; a body where the stretch an unseen one can be in comes into view is
        that one. Starting a new one would leave the old one behind as a ghost."""
        unpaired = []
        for body in bodies:
            loco = self._lost_towards(body, pairs, view) or self._lost_within(body, pairs, view)
            if loco is None:
                unpaired.append(body)
                continue
            shift = body.head_m - loco.head_m if body.head_real else body.tail_m - loco.tail_m
            loco.tail_m, loco.head_m = loco.tail_m + shift, loco.head_m + shift
            loco.speed_mps, loco.last_real = loco.lost_speed_mps, {}
            pairs[loco] = body
        return unpaired

    def _lost_within(
        self, body: Body, pairs: dict[Locomotive, Body], view: TrackView
    ) -> Locomotive | None:
        """The unseen locomotive whose stretch the body lies in, near where it was thought
        to be (not one driving in at a door: that is a new one), the nearest if several."""
        if self._entering(body, view):
            return None
        found = [
            (loco.distance(body.tail_m, body.head_m), loco)
            for loco in self.locos
            if loco not in pairs
            and loco.confirmed
            and loco.range_m is not None
            and _within(body, loco.range_m)
            and loco.distance(body.tail_m, body.head_m) <= REVEAL_M
        ]
        return min(found, key=lambda pair: pair[0])[1] if found else None

    def _lost_towards(
        self, body: Body, pairs: dict[Locomotive, Body], view: TrackView
    ) -> Locomotive | None:
        found = []
        for loco in self.locos:
            if loco in pairs or not loco.confirmed:
                continue
            if loco.range_m is None and view.known_fraction(loco.tail_m, loco.head_m) >= 0.5:
                continue  # it is in sight (and not there): not lost in the dark
            ahead = body.tail_open and not body.tail_real and loco.head_m <= body.tail_m + NEAR_M
            behind = body.head_open and not body.head_real and loco.tail_m >= body.head_m - NEAR_M
            # one that stood when it went out of sight may have started off unseen: it is
            # the body only if nothing but unseen track lies between them
            hidden_to_tail = view.known_fraction(loco.head_m, body.tail_m) == 0.0
            hidden_to_head = view.known_fraction(body.head_m, loco.tail_m) == 0.0
            # (one last seen driving away from the body is not it: that is a new one)
            stood = abs(loco.lost_speed_mps) < STANDSTILL_MPS
            if ahead and (loco.lost_speed_mps >= STANDSTILL_MPS or (stood and hidden_to_tail)):
                found.append((body.tail_m - loco.head_m, loco))
            elif behind and (loco.lost_speed_mps <= -STANDSTILL_MPS or (stood and hidden_to_head)):
                found.append((loco.tail_m - body.head_m, loco))
        # Far apart only with nothing but unjudged track between (a hall seen past
        # nearer locomotives shows a far track in glimpses tens of metres apart), or
        # coming out at the edge of the stretch the unseen one can be in.
        found = [
            (gap, loco)
            for gap, loco in found
            if gap <= REACQUIRE_M
            or view.known_fraction(*_between(loco, body)) == 0.0
            or _out_of_range_edge(body, loco.range_m)
        ]
        return min(found, key=lambda pair: pair[0])[1] if found else None

    # -- updates -------------------------------------------------------------------------

    def _update(self, loco: Locomotive, body: Body, t: float, view: TrackView) -> list[Event]:
        self._update_speed(loco, body, t, view)
        length = loco.length_m
        gain = END_GAIN_MOVING if abs(loco.speed_mps) >= STANDSTILL_MPS else END_GAIN_STILL
        # Real ends were measured up to observation_max_age_s ago: carry them to now.
        seen_tail = body.tail_m + loco.speed_mps * body.tail_age_s
        seen_head = body.head_m + loco.speed_mps * body.head_age_s
        tail, head = loco.tail_m, loco.head_m
        if not body.tail_split:
            tail = _end(loco.tail_m, seen_tail, body.tail_real, gain, low_side=True)
        if not body.head_split:
            head = _end(loco.head_m, seen_head, body.head_real, gain, low_side=False)
        if length is not None and not body.tail_real and body.head_real:
            tail = head - length
        if length is not None and not body.head_real and body.tail_real:
            head = tail + length
        # A cut end may push a locomotive out, but not into its neighbour (a body that
        # spans both, their gap hidden, would otherwise stretch one over the other).
        low, high = self._room(loco)
        if not body.tail_real:
            tail = max(tail, min(low, loco.tail_m))
        if not body.head_real:
            head = min(head, max(high, loco.head_m))
        if body.tail_real and body.head_real:
            loco.lengths.append(body.head_m - body.tail_m)
        loco.tail_m, loco.head_m = tail, head
        loco.last_faces = _faces(body)
        loco.last_seen = t
        loco.missing_since = None
        loco.range_m, loco.went = None, 0
        loco.stale = False
        if body.tail_real or body.head_real:  # (else its speed is a guess: see _update_speed)
            loco.lost_speed_mps = loco.speed_mps
        loco.sightings += 1
        sure = self._entering(body, view) or (self._settled and _emerging(body))
        if not loco.confirmed and (loco.sightings >= CONFIRM_TICKS or sure):
            loco.confirmed, loco.id = True, self.new_id()
            return [self._event(loco, t, "arrived", {"confirmed_after": loco.sightings})]
        return []

    def _room(self, loco: Locomotive) -> tuple[float, float]:
        """From the head of the locomotive behind to the tail of the one ahead, where a
        camera saw those ends (pieces of one body, never seen apart, may still join)."""
        others = [o for o in self.locos if o is not loco]
        behind = [o.head_m for o in others if o.centre_m < loco.centre_m and "head" in o.ends_seen]
        ahead = [o.tail_m for o in others if o.centre_m > loco.centre_m and "tail" in o.ends_seen]
        return max(behind, default=-math.inf), min(ahead, default=math.inf)

    def _update_speed(self, loco: Locomotive, body: Body, t: float, view: TrackView) -> None:
        """Speed from successive raw real-end measurements (not from the filtered ends,
        which would feed the filter's own lag back into the speed)."""
        speeds = []
        for side, real, position, age in (
            ("tail", body.tail_real, body.tail_m, body.tail_age_s),
            ("head", body.head_real, body.head_m, body.head_age_s),
        ):
            if not real:
                continue
            seen_at = t - age
            previous = loco.last_real.get(side)
            if previous is not None and seen_at - previous[1] >= MIN_SPEED_BASE_S:
                speeds.append((position - previous[0]) / (seen_at - previous[1]))
            if previous is None or seen_at > previous[1]:
                loco.last_real[side] = (position, seen_at)
            loco.ends_seen.add(side)
        if not speeds:
            # no real end seen for a while (both cut, or its front runs on behind a nearer
            # locomotive): as for one out of sight (``_out_of_sight``), assume it stopped
            # after coasting, unless it is on its way out
            last = max((seen_at for _, seen_at in loco.last_real.values()), default=-math.inf)
            blind = not (body.tail_real or body.head_real) and t - last > COAST_S
            if blind and not self._exiting(loco, view):
                loco.speed_mps = 0.0
            return
        measured = statistics.fmean(speeds)
        speed = loco.speed_mps + SPEED_GAIN * (measured - loco.speed_mps)
        speed = max(-MAX_SPEED_MPS, min(MAX_SPEED_MPS, speed))
        loco.speed_mps = 0.0 if abs(speed) < STANDSTILL_MPS / 2 else speed

    def _unseen(self, loco: Locomotive, t: float, view: TrackView) -> list[Event]:
        """A locomotive no body was paired with this tick."""
        if loco.tail_m >= self.length_m or loco.head_m <= 0 or self._all_but_out(loco):
            return self._depart(loco, t, "drove out")
        in_sight = view.known_fraction(loco.tail_m, loco.head_m) >= 0.5
        # gone for a moment is more often a missed body than a locomotive gone on
        gone_a_while = t - loco.last_seen >= LEAVE_AFTER_S and not loco.went
        if loco.confirmed and loco.sightings >= CONFIRM_TICKS and gone_a_while:
            gone = self._gone_into(loco, view)
            if gone == "door":
                return self._depart(loco, t, "left through a doorway no camera sees")
            if gone is not None and in_sight:
                self._lose_in(loco, *gone)
        if (loco.range_m is not None or not in_sight) and self._out_of_sight(loco, t, view):
            return []
        return self._missing(loco, t)

    def _out_of_sight(self, loco: Locomotive, t: float, view: TrackView) -> bool:
        """Assume it stopped, unless it was on its way out of the track (then it leaves
        when the prediction says so). Where it is, is uncertain: ``range_m``. False when
        all of where it could be has come into view without it."""
        if loco.range_m is not None and view.known_fraction(*loco.range_m) >= 1.0:
            return False
        loco.range_m = _still_unjudged(view, loco)
        if not self._room_to_hide(view, loco.range_m):
            return False
        if t - loco.last_seen > COAST_S and not self._exiting(loco, view):
            loco.speed_mps = 0.0
        loco.stale = t - loco.last_seen >= self.settings.stale_after_s
        return True

    def _room_to_hide(self, view: TrackView, stretch: tuple[float, float]) -> bool:
        """Whether the track no camera judges in ``stretch`` can hold a locomotive: a run
        of it as long as the shortest one (less a margin for blind spans' edges), or one
        that reaches a track end (a locomotive can stand in the door). A column's shadow
        or a person cannot: a body kept "out of sight" there is a false one."""
        need = HIDE_SHARE * self.settings.min_locomotive_m
        return any(
            b - a >= need or a <= GRID_M or b >= self.length_m - GRID_M
            for a, b in _unjudged(view, *stretch)
        )

    def _missing(self, loco: Locomotive, t: float) -> list[Event]:
        """In sight and not there: estimators miss bodies, so it lingers a while."""
        if not loco.confirmed:
            return self._depart(loco, t, "")
        loco.range_m, loco.went = None, 0
        loco.missing_since = loco.missing_since or t
        near_end = loco.tail_m < EDGE_ZONE_M or loco.head_m > self.length_m - EDGE_ZONE_M
        if near_end and t - loco.missing_since >= min(LEAVE_AFTER_S, self.settings.depart_after_s):
            return self._depart(loco, t, "left past a track end")
        if t - loco.missing_since >= self.settings.depart_after_s:
            return self._depart(loco, t, "not seen")
        return []

    def _all_but_out(self, loco: Locomotive) -> bool:
        """Less than a nose's length still inside, last seen moving out: it drove out.
        (Cameras read the last metre at a door late, so the speed learned there is too
        low for the prediction to finish the exit.) One just arriving is not moving out."""
        v = loco.lost_speed_mps
        return (loco.tail_m >= self.length_m - ENTRY_M and v > 0) or (
            loco.head_m <= ENTRY_M and v < 0
        )

    def _shortest_m(self, loco: Locomotive) -> float:
        """How long the locomotive is at least."""
        known = loco.length_m or loco.head_m - loco.tail_m
        return max(known, self.settings.min_locomotive_m)

    def _gone_into(
        self, loco: Locomotive, view: TrackView
    ) -> tuple[tuple[float, float], int] | Literal["door"] | None:
        """Where a locomotive seen gone from where it stood can be: in the track no camera
        judges beyond the face a camera saw last (its tail seen last: it went on past
        it), or beside it when no face was seen. Returns that stretch and the direction
        it went (0: either); ``"door"`` when the stretch is a doorway too short to hold
        it (it went out); None when no stretch can hold it (the estimators missed it)."""
        shortest = self._shortest_m(loco)
        holes = _unjudged(view, 0.0, self.length_m)
        faces = {side for side in loco.last_faces if _in_view(view, loco.last_real[side][0])}
        if faces != loco.last_faces:
            faces = set()  # where a face was seen is out of sight now: no telling where it went
        if faces == {"tail"}:
            face = loco.last_real["tail"][0]
            beyond = [h for h in holes if h[1] > face + NEAR_M]
            hole, direction, door = (beyond[0] if beyond else None), 1, "end"
        elif faces == {"head"}:
            beyond = [h for h in holes if h[0] < loco.last_real["head"][0] - NEAR_M]
            hole, direction, door = (beyond[-1] if beyond else None), -1, "start"
        else:
            return None  # no face, or both: no telling where it went (or it was missed)
        if hole is None:
            return None
        if hole[1] - hole[0] >= shortest:
            return hole, direction
        at_door = hole[0] <= 0.0 if door == "start" else hole[1] >= self.length_m
        # one seen driving that way drives out on its speed (a missed body is no exit)
        driving = direction * loco.lost_speed_mps >= STANDSTILL_MPS
        return "door" if door in self.doors and at_door and not driving else None

    def _lose_in(self, loco: Locomotive, stretch: tuple[float, float], direction: int) -> None:
        """Out of sight in ``stretch``: moved to its edge when it went that way (a body at
        the old place later is not it), kept in place otherwise."""
        length = loco.head_m - loco.tail_m
        if direction > 0:
            loco.tail_m, loco.head_m = stretch[0], stretch[0] + length
        elif direction < 0:
            loco.tail_m, loco.head_m = stretch[1] - length, stretch[1]
        if direction and loco.lost_speed_mps * direction < STANDSTILL_MPS:
            loco.lost_speed_mps = direction * STANDSTILL_MPS
        loco.speed_mps = loco.lost_speed_mps if direction else 0.0
        loco.range_m, loco.went = stretch, direction
        loco.missing_since = None

    def _exiting(self, loco: Locomotive, view: TrackView) -> bool:
        """On its way out: due at a door within ``EXIT_HORIZON_S``; or heading for a door
        through a doorway no camera sees that is too short to hold it (it cannot be
        standing there unseen; one that could is kept, its position uncertain); or due at
        a door within ``UNSEEN_EXIT_S`` with no camera judging any of the track between
        (hidden behind nearer locomotives): waiting for evidence that never comes would
        keep every such departure as a ghost."""
        v = loco.speed_mps
        length = self._shortest_m(loco)
        if v > 0 and "end" in self.doors:
            doorway = self.length_m - max(self.in_view_to_m, 0.0)
            unseen = doorway < length and loco.head_m >= self.in_view_to_m - NEAR_M
            due_s = (self.length_m - loco.tail_m) / v
            dark = view.known_fraction(loco.head_m, self.length_m) == 0.0
            return unseen or due_s <= EXIT_HORIZON_S or (dark and due_s <= UNSEEN_EXIT_S)
        if v < 0 and "start" in self.doors:
            doorway = min(self.in_view_from_m, self.length_m)
            unseen = doorway < length and loco.tail_m <= doorway + NEAR_M
            due_s = loco.head_m / -v
            dark = view.known_fraction(0.0, loco.tail_m) == 0.0
            return unseen or due_s <= EXIT_HORIZON_S or (dark and due_s <= UNSEEN_EXIT_S)
        return False

    def _depart(self, loco: Locomotive, t: float, why: str) -> list[Event]:
        self.locos.remove(loco)
        if not loco.confirmed:
            return []
        return [self._event(loco, t, "departed", {"why": why, "dwell_s": round(t - loco.since, 1)})]

    @property
    def _settled(self) -> bool:
        """What the cameras have in view has stopped growing: the doorways beyond are known."""
        return self.last_tick is not None and self.last_tick - self.doorways_since >= SETTLE_S

    def _entering(self, body: Body, view: TrackView) -> bool:
        """A body driving in: its outer side at a door, or in a doorway no camera sees
        (cameras rarely watch doors; once the cameras have settled, a doorway is what
        nobody has judged, or judges now, between the door and the body); and its inner
        face real (an estimator's false blob there has two cut ends), long enough to be
        sure, or out of sight too (behind it, more track than a blob's edge nobody judges)
        while all the track to the door is."""
        sure = body.length_m >= MIN_SURE_M
        if "start" in self.doors:
            dark = view.known_fraction(0.0, body.tail_m) == 0.0
            doorway = body.tail_open and (
                body.tail_m <= EDGE_ZONE_M
                or (self._settled and (body.tail_m <= self.in_view_from_m + NEAR_M or dark))
            )
            hidden = view.known_fraction(body.head_m, body.head_m + MIN_SURE_M) == 0.0
            inner = body.head_real or sure or (hidden and dark)
            if (body.tail_m <= ENTRY_M or doorway) and inner:
                return True
        if "end" in self.doors:
            dark = view.known_fraction(body.head_m, self.length_m) == 0.0
            doorway = body.head_open and (
                body.head_m >= self.length_m - EDGE_ZONE_M
                or (self._settled and (body.head_m >= self.in_view_to_m - NEAR_M or dark))
            )
            hidden = view.known_fraction(body.tail_m - MIN_SURE_M, body.tail_m) == 0.0
            inner = body.tail_real or sure or (hidden and dark)
            if (body.head_m >= self.length_m - ENTRY_M or doorway) and inner:
                return True
        return False

    @property
    def _shortest_between_faces_m(self) -> float:
        """The shortest a locomotive reads between two real faces."""
        return self.settings.min_locomotive_m - FACES_SLACK_M

    def _can_hold_one(self, body: Body, view: TrackView) -> bool:
        """Whether the body can be (part of) a locomotive: from a real end, or else from
        the judged track beyond its cut end (a door: no limit), there is room for the
        shortest locomotive (less a margin). A floor marking, a pit's edge or the gap
        between two locomotives read as a short body with a real face cannot."""
        if body.tail_real and body.head_real:
            return body.length_m >= self._shortest_between_faces_m
        low = body.tail_m if body.tail_real else _unjudged_beyond(view, body.tail_m, -1)
        high = body.head_m if body.head_real else _unjudged_beyond(view, body.head_m, 1)
        if low <= GRID_M and "start" in self.doors:
            low = -math.inf
        if high >= self.length_m - GRID_M and "end" in self.doors:
            high = math.inf
        return high - low >= HIDE_SHARE * self.settings.min_locomotive_m

    def _birth(self, body: Body, t: float, view: TrackView) -> list[Event]:
        if not self._can_hold_one(body, view):
            return []
        at_end = self._entering(body, view)
        # Where a locomotive can appear at once: at a track end, on track nobody could see
        # a moment ago, or when the estimator starts. Elsewhere it is noise until confirmed.
        was_unknown = body.length_m >= MIN_SURE_M and (
            self.previous is None or self.previous.known_fraction(body.tail_m, body.head_m) < 1.0
        )
        # (unjudged track while cameras come up is not hidden track: no emerging then)
        emerging = self._settled and _emerging(body)
        confirmed = at_end or was_unknown or emerging or self.ticks <= 2
        # A piece of a locomotive that a camera's facing ends split off waits for them to
        # hold (CONFIRM_TICKS): a door's jambs read as ends for one tick split it too.
        if body in self.split_off and self.ticks > 2:
            confirmed = at_end
        loco = Locomotive(
            id=self.new_id() if confirmed else "",
            track_id=self.track_id,
            tail_m=body.tail_m,
            head_m=body.head_m,
            since=t,
            last_seen=t,
            confirmed=confirmed,
            moving=at_end and self.ticks > 2,
            rest_centre_m=(body.tail_m + body.head_m) / 2,
        )
        if body.tail_real and body.head_real:
            loco.lengths.append(body.length_m)
        loco.last_faces = _faces(body)
        loco.ends_seen = set(loco.last_faces)
        self.locos.append(loco)
        if not confirmed:
            return []
        return [self._event(loco, t, "arrived", {"first_tick": self.ticks <= 2})]

    def _merge_overlapping(self) -> None:
        """Two tracks on one body (after an occlusion or a cut) become the older one."""
        self.locos.sort(key=lambda lo: lo.tail_m)
        for a, b in itertools.pairwise(list(self.locos)):
            if a not in self.locos or b not in self.locos:
                continue
            shorter = min(a.head_m - a.tail_m, b.head_m - b.tail_m)
            if shorter > 0 and a.overlap(b.tail_m, b.head_m) > 0.5 * shorter:
                self._absorb(a, b)

    def _absorb(self, a: Locomotive, b: Locomotive) -> tuple[Locomotive, Locomotive]:
        """Make two tracks of one locomotive the older one; returns (kept, dropped)."""
        older_first = (a.confirmed, -a.since) >= (b.confirmed, -b.since)
        keep, drop = (a, b) if older_first else (b, a)
        # its ends become the outer ends of the two, and so do the last real ends its
        # speed is measured from (else the jump between them reads as a speed)
        outer = {
            "tail": min(a, b, key=lambda lo: lo.tail_m),
            "head": max(a, b, key=lambda lo: lo.head_m),
        }
        keep.tail_m, keep.head_m = outer["tail"].tail_m, outer["head"].head_m
        for side, loco in outer.items():
            if loco is drop:
                keep.last_real.pop(side, None)
                if side in drop.last_real:
                    keep.last_real[side] = drop.last_real[side]
        keep.identity.merge(drop.identity)
        keep.ends_seen |= drop.ends_seen
        self.locos.remove(drop)
        return keep, drop

    def _motion_events(self, loco: Locomotive, t: float) -> list[Event]:
        s = self.settings
        if not loco.moving and abs(loco.centre_m - loco.rest_centre_m) > s.move_threshold_m:
            loco.moving, loco.still_since = True, None
            return [self._event(loco, t, "moved", {"from_m": round(loco.rest_centre_m, 2)})]
        if loco.moving:
            if abs(loco.speed_mps) >= STANDSTILL_MPS:
                loco.still_since = None
            elif loco.still_since is None:
                loco.still_since = t
            elif t - loco.still_since >= s.stop_after_s:
                loco.moving, loco.rest_centre_m = False, loco.centre_m
                return [self._event(loco, t, "stopped")]
        return []

    def _identity_events(
        self, loco: Locomotive, t: float, taken: Mapping[str, frozenset[str]]
    ) -> list[Event]:
        s = self.settings
        events = []
        resolved = loco.identity.resolved(s.identify_min_votes, s.identify_min_share, taken)
        loco.resolved = resolved
        changed = {n: v for n, v in resolved.items() if loco.identified.get(n) != v[0]}
        loco.identified.update({name: value for name, (value, _) in changed.items()})
        for name, (value, confidence) in sorted(changed.items()):
            detail = {"attribute": name, "value": value, "confidence": round(confidence, 3)}
            events.append(self._event(loco, t, "identified", detail))
        return events

    def _event(
        self, loco: Locomotive, t: float, kind: str, detail: dict[str, object] | None = None
    ) -> Event:
        return Event(
            time=t,
            kind=kind,
            loco_id=loco.id,
            track_id=self.track_id,
            tail_m=round(loco.tail_m, 3),
            head_m=round(loco.head_m, 3),
            station_id=self.station_of(self.track_id, loco.tail_m, loco.head_m),
            series=loco.identified.get("model"),
            plate=loco.identified.get("plate"),
            detail=detail or {},
        )


def _emerging(body: Body) -> bool:
    """A body coming out of track no camera judges (hidden behind a nearer locomotive,
    or never in view): one side open, the other a real face or long enough to be sure.
    A false blob in judged track has neither."""
    sure, face = body.length_m >= MIN_SURE_M, body.length_m >= ENTRY_M
    return (body.tail_open and ((body.head_real and face) or sure)) or (
        body.head_open and ((body.tail_real and face) or sure)
    )


def _faces(body: Body) -> frozenset[str]:
    return frozenset(
        side for side, real in (("tail", body.tail_real), ("head", body.head_real)) if real
    )


def _in_view(view: TrackView, metre: float) -> bool:
    """Cameras judge the track at this metre now."""
    return view.known_fraction(metre - GRID_M, metre + GRID_M) >= 0.5


def _faced(before: Locomotive, after: Locomotive) -> bool:
    """Some camera once saw a real end at the ends two neighbours turn to each other."""
    return "head" in before.ends_seen or "tail" in after.ends_seen


def _out_of_range_edge(body: Body, stretch: tuple[float, float] | None) -> bool:
    """The body's cut end lies at an edge of the stretch an unseen locomotive can be in:
    it comes out of there."""
    if stretch is None:
        return False
    return (not body.tail_real and abs(body.tail_m - stretch[1]) <= NEAR_M) or (
        not body.head_real and abs(body.head_m - stretch[0]) <= NEAR_M
    )


def _within(body: Body, stretch: tuple[float, float] | None) -> bool:
    """Most of the body lies in the stretch (None: anywhere)."""
    if stretch is None or body.length_m <= 0:
        return True
    inside = min(body.head_m, stretch[1]) - max(body.tail_m, stretch[0])
    return inside >= 0.5 * body.length_m


def _unjudged(view: TrackView, from_m: float, to_m: float) -> list[tuple[float, float]]:
    """The stretches of ``from_m..to_m`` no camera judges now."""
    if to_m <= from_m:
        return []
    return subtract_spans([(from_m, to_m)], ((a * GRID_M, b * GRID_M) for a, b in view.known))


def _unjudged_beyond(view: TrackView, metre: float, direction: int) -> float:
    """Where the track no camera judges, from ``metre`` on in ``direction`` (+1: towards
    the track's end), stops: ``metre`` itself when the track just beyond is judged."""
    step = metre + direction * GRID_M / 2
    if step <= 0.0 or step >= view.length_m:
        return 0.0 if direction < 0 else view.length_m
    if any(a * GRID_M <= step < b * GRID_M for a, b in view.known):
        return metre
    if direction > 0:
        return min((a * GRID_M for a, _ in view.known if a * GRID_M > metre), default=view.length_m)
    return max((b * GRID_M for _, b in view.known if b * GRID_M < metre), default=0.0)


def _still_unjudged(view: TrackView, loco: Locomotive) -> tuple[float, float]:
    """Where an unseen locomotive can be now: the track no camera judges now of where
    it could be before (the stretches that came into view empty are out), and around
    where it is thought to be."""
    around = _unjudged_around(view, loco.tail_m, loco.head_m)
    if loco.range_m is None:
        return around
    low, high = loco.range_m
    holes = [h for h in _unjudged(view, low, high) if h[1] - h[0] > GRID_M]
    return round(min([around[0], *(h[0] for h in holes)]), 2), round(
        max([around[1], *(h[1] for h in holes)]), 2
    )


def _unjudged_around(view: TrackView, tail_m: float, head_m: float) -> tuple[float, float]:
    """The stretch around ``tail_m..head_m`` that no camera judges now: from the judged
    track before it to the judged track after it (or the track's ends)."""
    low, high = 0.0, view.length_m
    for a, b in view.known:
        if b * GRID_M <= tail_m + 1e-6:
            low = max(low, b * GRID_M)
        elif a * GRID_M >= head_m - 1e-6:
            high = min(high, a * GRID_M)
    return round(min(low, tail_m), 2), round(max(high, head_m), 2)


def _between(loco: Locomotive, body: Body) -> tuple[float, float]:
    """The track between a locomotive and a body that does not overlap it."""
    if loco.head_m <= body.tail_m:
        return loco.head_m, body.tail_m
    return body.head_m, loco.tail_m


def _end(known: float, seen: float, real: bool, gain: float, low_side: bool) -> float:
    """A new end position from the old one and what the body shows there.

    A real end is a measurement. A cut end only says the body reaches at least that far:
    locomotives do not shrink, so it may push the end out but never pull it in (a missed
    detection by the camera beyond would otherwise eat the locomotive from that side).
    """
    if real:
        return known + gain * (seen - known)
    return min(known, seen) if low_side else max(known, seen)


def _cut(body: Body, locos: list[Locomotive]) -> list[Body]:
    """Cut a body that spans several locomotives at the middle of each gap between them."""
    if len(locos) == 1:
        return [body]
    cuts = [(a.head_m + b.tail_m) / 2 for a, b in itertools.pairwise(locos)]
    bounds = [body.tail_m, *cuts, body.head_m]
    pieces = []
    for index, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        first, last = index == 0, index == len(bounds) - 2
        pieces.append(
            Body(
                lo,
                hi,
                body.tail_real and first,
                body.head_real and last,
                body.tail_open if first else True,
                body.head_open if last else True,
                body.tail_age_s,
                body.head_age_s,
                tail_split=not first,  # a cut we made: the locomotive keeps what it knew
                head_split=not last,
            )
        )
    return pieces


def _apart(
    loco: Locomotive, pieces: list[Body], shortest_m: float
) -> tuple[list[Body], list[list[Body]]]:
    """Split a locomotive's pieces where a camera saw a real head and a real tail face to
    face: two locomotives stand there, not one split by an occluder (an occluder's edge
    is a cut end). The locomotive keeps the group it overlaps most; the others are new.
    This undoes a locomotive born over two neighbours while the gap between them was
    not yet seen (cameras coming up one by one). A group between two real faces that is
    shorter than ``shortest_m`` is no locomotive (a side door's jambs read as ends):
    it stays with its neighbour."""
    ordered = sorted(pieces, key=lambda b: b.tail_m)
    groups = [[ordered[0]]]
    for piece in ordered[1:]:
        before = groups[-1][-1]
        facing = before.head_real and piece.tail_real
        if facing and not (before.head_split or piece.tail_split):
            groups.append([piece])
        else:
            groups[-1].append(piece)
    groups = _too_short_rejoined(groups, shortest_m)
    if len(groups) == 1:
        return pieces, []
    overlap = [sum(loco.overlap(b.tail_m, b.head_m) for b in group) for group in groups]
    best = overlap.index(max(overlap))
    return groups[best], groups[:best] + groups[best + 1 :]


def _too_short_rejoined(groups: list[list[Body]], shortest_m: float) -> list[list[Body]]:
    """Groups of pieces with a real face at both ends, shorter than any locomotive,
    joined to the group before them (the first one: to the one after it)."""

    def too_short(group: list[Body]) -> bool:
        faced = group[0].tail_real and group[-1].head_real
        return faced and group[-1].head_m - group[0].tail_m < shortest_m

    joined: list[list[Body]] = []
    for group in groups:
        if joined and (too_short(group) or too_short(joined[-1])):
            joined[-1] = joined[-1] + group
        else:
            joined.append(group)
    return joined


def _shed(loco: Locomotive, kept: Body, others: list[list[Body]]) -> None:
    """The locomotive gives up what another one stands on: its ends facing the others
    move to the real ends seen there at once (smoothing towards them would keep it
    overlapping its new neighbour, which would merge them back), and the length it
    learned over both is forgotten."""
    if any(group[0].tail_m >= kept.head_m for group in others):
        loco.head_m = kept.head_m
        loco.last_real.pop("head", None)  # a new end there, not a move: no speed from it
    if any(group[-1].head_m <= kept.tail_m for group in others):
        loco.tail_m = kept.tail_m
        loco.last_real.pop("tail", None)
    loco.lengths.clear()


def _join(pieces: list[Body]) -> Body:
    """Pieces of one locomotive (split by an occluder) as one body."""
    if len(pieces) == 1:
        return pieces[0]
    first = min(pieces, key=lambda b: b.tail_m)
    last = max(pieces, key=lambda b: b.head_m)
    return Body(
        first.tail_m,
        last.head_m,
        first.tail_real,
        last.head_real,
        first.tail_open,
        last.head_open,
        first.tail_age_s,
        last.head_age_s,
        first.tail_split,
        last.head_split,
    )
