"""``locowatch sim ...``: the facility twin from the command line."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import click
import cv2
import numpy as np

from locowatch.db.cli import db_url_option
from locowatch.db.location import resolve_db_url
from locowatch.facility.loading import load_facility
from sim.datasets import KINDS, write_dataset
from sim.evaluation import evaluate, read_snapshots, read_snapshots_from_db
from sim.faults import NO_FAULTS, FaultSpec
from sim.layout import CAMERA_FAMILIES, CameraFamily, LayoutSpec
from sim.options import resolution_option
from sim.pasted_plates import write_pasted_plates
from sim.plates import PLATE_STYLES, PlateStyle
from sim.recording import record, write_facility
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer
from sim.twin import RendererKind, Twin, TwinSpec
from sim.variety import VarietySpec


def _spec(
    seed: int,
    duration: float,
    faults: bool,
    random_plates: PlateStyle | None = None,
    start: datetime | None = None,
    renderer: RendererKind = "painter",
    family: CameraFamily = "along",
    variety: VarietySpec | None = None,
    resolutions: tuple[str, ...] = LayoutSpec.resolutions,
) -> TwinSpec:
    scenario = ScenarioSpec(duration_s=duration, random_plates=random_plates)
    return TwinSpec(
        seed=seed,
        layout=LayoutSpec(family=family, resolutions=resolutions),
        scenario=scenario if start is None else replace(scenario, start_time=start),
        faults=FaultSpec() if faults else NO_FAULTS,
        renderer=renderer,
        variety=variety or VarietySpec(),
    )


def _parse_variety(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> VarietySpec | None:
    try:
        return None if value is None else VarietySpec.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


family_option = click.option(
    "--family",
    type=click.Choice(CAMERA_FAMILIES),
    default="along",
    show_default=True,
    help="How the depot hangs its cameras (docs/twin.md, Camera families).",
)


variety_option = click.option(
    "--variety",
    callback=_parse_variety,
    metavar="SPEC",
    help="Which families of locomotive geometry, livery, plates and hall to draw from: "
    "'all', 'classic' (the default), or e.g. 'geometry=hood+carbody,hall=dark,series=any' "
    "(docs/twin.md, Variety).",
)


renderer_option = click.option(
    "--renderer",
    type=click.Choice(get_args(RendererKind)),
    default="painter",
    show_default=True,
    help="The hand-written painter's renderer, or OpenGL on Mesa's software rasterizer "
    "(docs/twin.md, Renderer).",
)


def _parse_start(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    """ISO 8601; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        start = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"expected ISO 8601 such as 2026-11-02T02:00Z, got {value!r}"
        ) from exc
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def _cameras(twin: Twin, choice: str | None) -> list[str] | None:
    """'cam-01,cam-03' picks those; a number N picks the first N; nothing picks all."""
    if not choice:
        return None
    if choice.isdigit():
        return twin.camera_ids[: int(choice)]
    return [c.strip() for c in choice.split(",") if c.strip()]


seed_option = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the layout, the day and the faults.",
)
duration_option = click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=600.0,
    show_default=True,
    help="Scenario length in seconds (05:00-23:00).",
)

start_option = click.option(
    "--start",
    callback=_parse_start,
    metavar="ISO-TIME",
    help="Wall-clock stamp of scenario time 0 (UTC unless a zone is given). Default: 05:00 "
    "in Moscow of a day that ended at least a day ago. Frames and truth do not depend on it.",
)

faults_option = click.option(
    "--faults/--no-faults",
    default=True,
    show_default=True,
    help="Freezes, black frames and dropouts on some cameras.",
)


@click.group()
def sim() -> None:
    """The facility twin: a simulated depot with cameras, for demos, tests and training."""


@sim.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write into.",
)
@seed_option
@duration_option
@click.option("--fps", type=click.FloatRange(min=0.1, max=30), default=2.0, show_default=True)
@click.option("--cameras", help="Camera ids (comma separated) or a count N (the first N).")
@faults_option
@start_option
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Render processes.",
)
@click.option(
    "--window",
    type=(float, float),
    metavar="START END",
    help="Render only these scenario seconds of the run (default: all of it).",
)
@renderer_option
@family_option
@resolution_option
@variety_option
def render(
    out: Path,
    seed: int,
    duration: float,
    fps: float,
    cameras: str | None,
    faults: bool,
    start: datetime | None,
    jobs: int,
    window: tuple[float, float] | None,
    renderer: RendererKind,
    family: CameraFamily,
    resolutions: tuple[str, ...],
    variety: VarietySpec | None,
) -> None:
    """Render every camera to H.264 files with ground truth, faults and calibration."""
    spec = _spec(
        seed,
        duration,
        faults,
        start=start,
        renderer=renderer,
        family=family,
        variety=variety,
        resolutions=resolutions,
    )
    twin = Twin(spec)
    try:
        record(spec, out, fps, _cameras(twin, cameras), jobs=jobs, window=window)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--window") from error
    click.echo(f"wrote {out}: video/, facility.yaml, ground_truth.jsonl, faults.jsonl")


@sim.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@seed_option
@click.option("--truth", is_flag=True, help="Write the true poses instead of point pairs.")
def layout(out: Path, seed: int, truth: bool) -> None:
    """Write the twin depot's facility file."""
    twin = Twin(replace(TwinSpec(seed=seed), faults=NO_FAULTS))
    config = (
        twin.facility if truth else twin.layout.installer_config(np.random.default_rng([seed, 3]))
    )
    write_facility(out, config, "Twin depot" + (" (true poses)" if truth else ""))
    click.echo(f"wrote {out}: {len(config.cameras)} cameras on {len(config.tracks)} tracks")


@sim.command()
@click.option("--camera", "camera_id", required=True)
@click.option("--at", "at_s", type=float, required=True, help="Scenario time in seconds.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Image file (.png or .jpg).",
)
@seed_option
@duration_option
@renderer_option
@family_option
@resolution_option
@variety_option
def frame(
    camera_id: str,
    at_s: float,
    out: Path,
    seed: int,
    duration: float,
    renderer: RendererKind,
    family: CameraFamily,
    resolutions: tuple[str, ...],
    variety: VarietySpec | None,
) -> None:
    """Render one frame of one camera (for a look, or the docs)."""
    spec = _spec(
        seed,
        duration,
        False,
        renderer=renderer,
        family=family,
        variety=variety,
        resolutions=resolutions,
    )
    twin = Twin(spec)
    if camera_id not in twin.camera_ids:
        raise click.BadParameter(f"unknown camera {camera_id!r}", param_hint="--camera")
    image = twin.frame(camera_id, at_s)
    assert image is not None  # no faults were scheduled
    cv2.imwrite(str(out), image)
    hour = twin.scenario.hour_of_day(at_s)
    click.echo(f"wrote {out}: {camera_id} at {int(hour):02d}:{int(hour % 1 * 60):02d}")


@click.command(name="eval")
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="ground_truth.jsonl of a twin run.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Estimated facility state, one JSON snapshot per line. "
    "Without it: the state_snapshots of the database (--db, or the managed one).",
)
@db_url_option
@click.option("--flow", help="Score only this flow's snapshots.")
@click.option(
    "--facility",
    "facility_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Facility file; true spans are clipped to its tracks.",
)
@click.option(
    "--tracks",
    metavar="ID,...",
    help="Score only these tracks (a demo's cameras also see tracks it does not score).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the scores here as JSON.",
)
def evaluate_command(
    truth_path: Path,
    state_path: Path | None,
    db_url: str | None,
    flow: str | None,
    facility_path: Path | None,
    tracks: str | None,
    json_path: Path | None,
) -> None:
    """Score a facility-state stream against the twin's ground truth."""
    lengths = None
    if facility_path is not None:
        facility = load_facility(facility_path)
        lengths = {t.id: t.length_m for t in facility.tracks}
    try:
        truth = list(read_snapshots(truth_path))
        if state_path is not None:
            state = read_snapshots(state_path, flow)
        elif truth:
            url = resolve_db_url(db_url)
            state = read_snapshots_from_db(url, flow, truth[0].time - 1, truth[-1].time + 1)
        else:
            state = iter(())
        only = None if tracks is None else {t.strip() for t in tracks.split(",") if t.strip()}
        scores = evaluate(truth, state, lengths, only)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if scores.snapshots == 0:
        raise click.ClickException(
            "no estimated snapshot lies within 0.75 s of a ground-truth line: "
            "are the two from the same run (and the flow right)?"
        )
    click.echo(scores.table())
    if json_path is not None:
        json_path.write_text(json.dumps(scores.to_json(), indent=2) + "\n")


@sim.command()
@seed_option
@duration_option
@click.option("--fps", type=click.FloatRange(min=0.1, max=30), default=2.0, show_default=True)
@click.option(
    "--cameras",
    default="4",
    show_default=True,
    help="Camera ids (comma separated) or a count N (the first N).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8554,
    show_default=True,
    help="RTSP port (0: any free port).",
)
@click.option(
    "--from",
    "recording",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Stream a recorded run's videos (cheap) instead of rendering live.",
)
@faults_option
def serve(
    seed: int,
    duration: float,
    fps: float,
    cameras: str,
    port: int,
    recording: Path | None,
    faults: bool,
) -> None:
    """Serve twin cameras as RTSP streams until stopped (Ctrl-C) or the run ends."""
    twin = Twin(_spec(seed, duration, faults))
    chosen = _cameras(twin, cameras) or twin.camera_ids
    streamer = TwinStreamer(
        chosen, twin=None if recording else twin, recording=recording, fps=fps, port=port
    )
    with streamer:
        for camera, url in streamer.urls().items():
            click.echo(f"{camera}  {url}")
        try:
            while recording is not None or streamer.scenario_time() < duration:
                time.sleep(1.0)
        except KeyboardInterrupt:
            click.echo("stopping")


@sim.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@seed_option
@duration_option
@click.option(
    "--every",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds of scenario time between samples of a camera.",
)
@click.option("--cameras", help="Camera ids (comma separated) or a count N (the first N).")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Render processes.",
)
@click.option(
    "--kinds",
    default="position,model,plate",
    show_default=True,
    help="Which sets to write; frames that yield none of them are not rendered.",
)
@click.option(
    "--random-plates",
    type=click.Choice(PLATE_STYLES),
    is_flag=False,
    flag_value="any",
    help="Paint a made-up text on every plate at every sample (reader training, not tests): "
    "'any' (the default) any plate-like text, 'near' a twin series with one character "
    "changed.",
)
@renderer_option
@family_option
@resolution_option
@variety_option
def dataset(
    out: Path,
    seed: int,
    duration: float,
    every: float,
    cameras: str | None,
    jobs: int,
    kinds: str,
    random_plates: PlateStyle | None,
    renderer: RendererKind,
    family: CameraFamily,
    resolutions: tuple[str, ...],
    variety: VarietySpec | None,
) -> None:
    """Write training sets for the position, model and plate estimators (docs/datasets.md)."""
    spec = _spec(
        seed,
        duration,
        faults=False,
        random_plates=random_plates,
        renderer=renderer,
        family=family,
        variety=variety,
        resolutions=resolutions,
    )
    wanted = tuple(k for k in KINDS if k in kinds.split(","))
    counts = write_dataset(spec, out, every, _cameras(Twin(spec), cameras), jobs=jobs, kinds=wanted)
    click.echo(f"wrote {out}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@sim.command(name="paste-plates")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--backgrounds",
    required=True,
    help="Rendered sets (comma separated folders) whose bare plate windows are pasted on.",
)
@click.option("--count", type=click.IntRange(min=1), default=20000, show_default=True)
@seed_option
@click.option(
    "--style",
    type=click.Choice(PLATE_STYLES),
    default="any",
    show_default=True,
    help="Made-up texts: 'any' plate-like text, 'near' a twin series with one character changed.",
)
def paste_plates(out: Path, backgrounds: str, count: int, seed: int, style: PlateStyle) -> None:
    """Write plate windows made by pasting made-up numbers onto bare windows of rendered
    sets, at the sizes cameras see them (reader training; sim/pasted_plates.py)."""
    folders = [Path(p) for p in backgrounds.split(",") if p]
    written = write_pasted_plates(folders, out, count, seed, style)
    click.echo(f"wrote {out}: {written} plate")


@sim.command()
@click.option("--target", required=True, metavar="HOST:PORT", help="Cloud ingest address.")
@click.option("--gateway", "gateway_id", required=True, help="Gateway id the token is for.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File with the gateway's token.",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA of ingest's certificate; without it the connection is plaintext.",
)
@click.option("--flows", default="prod,dev", show_default=True, help="Flows to estimate for.")
@click.option(
    "--live/--replay",
    default=True,
    show_default=True,
    help="live: paced, stamped from now on; replay: as fast as ingest takes it, stamped "
    "from --start.",
)
@click.option("--speed", type=click.FloatRange(min=0.1), default=1.0, show_default=True)
@seed_option
@duration_option
@faults_option
@start_option
def feed(
    target: str,
    gateway_id: str,
    token_file: Path,
    tls_ca: Path | None,
    flows: str,
    live: bool,
    speed: float,
    seed: int,
    duration: float,
    faults: bool,
    start: datetime | None,
) -> None:
    """Play the edge: stream the twin's simulated estimations to cloud ingest.

    Until the edge services exist (and in cloud demos and tests after), this sends what a
    gateway on the twin would: noisy position, series and plate estimations derived from
    the ground truth, and camera health, through the same store-and-forward protocol.
    """
    from sim.estimations import twin_estimations
    from sim.gateway import SimGateway

    twin = Twin(_spec(seed, duration, faults, start=start))
    gateway = SimGateway(
        target,
        gateway_id,
        twin.facility.facility.id,
        token_file.read_text(encoding="utf-8").strip(),
        root_certificates=tls_ca.read_bytes() if tls_ca else None,
        batch_size=2000,
    )
    names = tuple(f.strip() for f in flows.split(",") if f.strip())
    shift = time.time() - twin.scenario.spec.start_time.timestamp() if live else 0.0
    started, sent, stored = time.monotonic(), 0, 0
    for second, chunk in _by_second(twin_estimations(twin, flows=names)):
        if live:
            wait = started + second / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            _restamp(chunk, shift, twin.scenario.spec.start_time.timestamp(), speed)
        report = gateway.send(gateway.number(chunk))
        sent, stored = sent + len(chunk), stored + report.stored
        if second % 60 == 0:
            click.echo(f"scenario {second:4d} s: sent {sent}, stored {stored}", err=True)
    click.echo(f"sent {sent} envelopes, stored {stored}")


def _by_second(envelopes: Iterator[Any]) -> Iterator[tuple[int, list[Any]]]:
    """Envelopes grouped by whole seconds of scenario time (they come in capture order)."""
    from sim.estimations import capture_stamp

    first: int | None = None
    for second, group in itertools.groupby(envelopes, lambda e: capture_stamp(e).seconds):
        first = second if first is None else first
        yield second - first, list(group)


def _restamp(chunk: list[Any], shift: float, start: float, speed: float) -> None:
    """Move capture times so the day starts now and runs ``speed`` times as fast."""
    for envelope in chunk:
        payload = getattr(envelope, envelope.WhichOneof("payload"))
        for field in ("capture_time", "observed_time", "last_frame_time"):
            if field in payload.DESCRIPTOR.fields_by_name and payload.HasField(field):
                stamp = getattr(payload, field)
                t = stamp.seconds + stamp.nanos * 1e-9
                stamp.FromNanoseconds(int((start + (t - start) / speed + shift) * 1e9))


@sim.command()
@click.option(
    "--families",
    default="along,across,sparse,roof",
    show_default=True,
    help="Camera families (sim.layout) to score, comma separated.",
)
@click.option("--seeds", default="1,2", show_default=True, help="Layout seeds, comma separated.")
@duration_option
def oracle(families: str, seeds: str, duration: float) -> None:
    """Score geometry and fusion alone: the true intervals each camera sees, through the FSE."""
    from sim.oracle import oracle_run, table

    runs = []
    for family in families.split(","):
        if family not in CAMERA_FAMILIES:
            raise click.BadParameter(f"unknown family {family!r}", param_hint="--families")
        for seed in seeds.split(","):
            runs.append(oracle_run(family, int(seed), duration))
            click.echo(f"{family} seed {seed}: {100 * runs[-1].scores.count_exact:.1f} % exact "
                       "count", err=True)  # fmt: skip
    click.echo(table(runs))
