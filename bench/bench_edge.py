"""How many cameras at 2 fps one gateway sustains on this machine with the CPU engine.

A recorded twin run (rendered once and kept in ``--recording``) is served as real RTSP
streams (GStreamer's server, replayed by ffmpeg without re-encoding, looped), and a real
gateway runs against them: ``locowatch edge run`` with capture, aggregator, the shared
estimators of the twin's prod and dev flows (position, series, plate) and the uplink.
Cloud ingest is not running: the uplink queues on disk, as it would in an outage, so the
numbers are the edge's alone.

For each camera count the gateway runs twice side by side, with change gating (the
default) and without it (the baseline: every strip through the network), or, with
``--position-models``, once per position network (the baseline: the one flows ran
before), and reports:
- position estimations per camera per second (the cameras deliver 2 fps);
- frame-to-estimation latency, capture time to the estimation queued in the uplink
  (median and p95 from the estimators' histograms over the measured window);
- network runs per second, and CPU use of the gateway's processes (cores, per camera).

``--gating`` measures on a full twin day (600 s, 1 fps, no services) the share of strips
change gating lets through, and how late a departure is noticed: from the first frame a
locomotive in view has moved 0.1 m until the gate passes its view on.

Writes bench/results/edge.json.

    .venv/bin/python bench/bench_edge.py [--cameras 8,16] [--seconds 60] [--gating]
        [--position-models position@1,position@3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.plan import GatewayPlan, gateway_plan
from locowatch.facility import load_facility
from locowatch.facility.config import FacilityConfig
from sim.recording import record, write_facility
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer, free_port
from sim.twin import Twin, TwinSpec

RESULTS = Path(__file__).resolve().parent / "results"
DAY_S = 600.0  # the twin's day, at the pace the tests use
WINDOW = (200.0, 260.0)  # a minute of it, replayed in a loop: arrivals, standing, a departure
FPS = 2.0
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="8,16", help="camera counts to run")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before measuring")
    parser.add_argument(
        "--recording", type=Path, default=Path(tempfile.gettempdir()) / "locowatch-bench-edge"
    )
    parser.add_argument("--gating", action="store_true", help="also measure gating on a day")
    parser.add_argument(
        "--position-models",
        help="compare these position networks side by side (e.g. position@1,position@3), "
        "gating on, instead of gating on against off",
    )
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C, so the gateway and the RTSP server are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    counts = [int(c) for c in args.cameras.split(",")]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "edge.json"
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    cameras = bench_cameras(max(counts))
    recording = ensure_recording(args.recording, cameras)
    runs = []
    models = args.position_models.split(",") if args.position_models else None
    for count in counts:
        variants = [(True, m) for m in models] if models else [(True, None), (False, None)]
        for gating, model in variants:
            run = run_gateway(recording, cameras[:count], gating, args.warmup, args.seconds, model)
            runs.append(run)
            print(summary(run), flush=True)
            results["models_runs" if models else "runs"] = runs
            out.write_text(json.dumps(results, indent=2) + "\n")  # saved as it goes
        if models:
            continue
        on, off = runs[-2], runs[-1]
        print(
            f"{count} cameras: gating runs the network {off['inferred_per_s'] / max(on['inferred_per_s'], 1e-9):.1f}x "  # noqa: E501
            f"less often and uses {off['cpu_cores'] / max(on['cpu_cores'], 1e-9):.2f}x less CPU"
        )
    if args.gating:
        results["gating_day"] = gating_day()
        print(json.dumps(results["gating_day"], indent=2))
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def bench_cameras(count: int) -> list[str]:
    """The first ``count`` cameras, track by track, in order along each track."""
    twin = Twin(TwinSpec(seed=SEED))
    ordered = sorted(twin.facility.cameras, key=lambda c: (c.views[0].track, c.views[0].start_m))
    if len(ordered) < count:
        raise SystemExit(f"the twin has only {len(ordered)} cameras")
    return [c.id for c in ordered[:count]]


def ensure_recording(folder: Path, cameras: list[str]) -> Path:
    manifest = folder / "manifest.json"
    if manifest.exists():
        done = json.loads(manifest.read_text())
        if set(cameras) <= set(done["cameras"]) and done.get("video_start_s") == WINDOW[0]:
            return folder
    seconds = WINDOW[1] - WINDOW[0]
    print(f"rendering {len(cameras)} cameras x {seconds:.0f} s at {FPS} fps into {folder}")
    spec = TwinSpec(seed=SEED, scenario=ScenarioSpec(duration_s=DAY_S))
    return record(spec, folder, FPS, cameras, jobs=2, window=WINDOW)


def facility_for(
    recording: Path, urls: dict[str, str], gating: bool, data: Path, position: str | None
) -> Path:
    """The recording's facility with only these cameras, on RTSP, and a gateway section;
    with ``position``, every flow runs that position network."""
    config: FacilityConfig = Twin(TwinSpec(seed=SEED)).facility
    cameras = [c.model_copy(update={"source": urls[c.id]}) for c in config.cameras if c.id in urls]
    token = data / "gateway.token"
    token.write_text("bench-token\n")
    raw = config.model_dump(mode="json", exclude_none=True)
    raw["cameras"] = [c.model_dump(mode="json", exclude_none=True) for c in cameras]
    for flow in raw["flows"] if position else []:
        flow["position"] = {"model": position}
    raw["gateway"] = {
        "id": "gw-bench",
        "data_dir": str(data / "gateway"),
        "cloud": {"endpoint": f"127.0.0.1:{free_port()}", "tls": False, "token_file": str(token)},
        "services": {"base_port": 51060, "metrics_base_port": 9560},
        "gating": {"enabled": gating},
    }
    path = data / "facility.yaml"
    write_facility(path, FacilityConfig.model_validate(raw), "bench_edge")
    return path


def run_gateway(
    recording: Path,
    cameras: list[str],
    gating: bool,
    warmup_s: float,
    seconds: float,
    position: str | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, TwinStreamer(
        cameras, recording=recording, fps=FPS
    ) as streamer:  # fmt: skip
        path = facility_for(recording, streamer.urls(), gating, Path(tmp), position)
        config = load_facility(path)
        plan = gateway_plan(config)
        model = prod_position(config)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "locowatch", "--log-level", "WARNING", "edge", "run",
             "--config", str(path)],
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_ready(plan, 180)
            wait_streaming(plan, cameras, 180)
            time.sleep(warmup_s)
            before = snapshot(plan, gateway.pid)
            time.sleep(seconds)
            after = snapshot(plan, gateway.pid)
        finally:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(30)
    return measure(before, after, len(cameras), gating) | {"position_model": model}


def wait_ready(plan: GatewayPlan, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for service in plan.services:
        with grpc.insecure_channel(service.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{service.name} not ready after {timeout_s:.0f} s")
                time.sleep(0.5)


def wait_streaming(plan: GatewayPlan, cameras: list[str], timeout_s: float) -> None:
    """Until capture says every camera streams (they open one after another)."""
    capture = plan.service("capture")
    url = f"http://{capture.host}:{capture.metrics_port}/metrics"
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        state = "locowatch_capture_camera_state"
        streaming = {
            c for c in cameras if metric(text, state, f'camera="{c}",state="streaming"') == 1
        }
        if len(streaming) == len(cameras):
            print(f"all {len(cameras)} cameras streaming after {time.monotonic() - started:.0f} s")
            return
        time.sleep(1.0)
    raise SystemExit(f"only {len(streaming)} of {len(cameras)} cameras streaming")


def snapshot(plan: GatewayPlan, group: int) -> dict[str, Any]:
    metrics = {}
    for service in plan.services:
        if service.metrics_port:
            url = f"http://{service.host}:{service.metrics_port}/metrics"
            metrics[service.name] = urllib.request.urlopen(url, timeout=5).read().decode()
    return {"at": time.monotonic(), "metrics": metrics, "cpu": cpu_seconds(group)}


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) of the gateway process and its children, by service."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            words = [w.decode() for w in (entry / "cmdline").read_bytes().split(b"\0") if w]
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) != root and int(fields[1]) != root:  # the supervisor or a child
            continue
        name = _service_name(words)
        usage[name] = usage.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return usage


def _service_name(words: list[str]) -> str:
    if "--name" in words:
        return words[words.index("--name") + 1]
    if "edge" in words:
        return (
            "supervisor"
            if words[words.index("edge") + 1] == "run"
            else words[words.index("edge") + 1]
        )
    return words[0] if words else "?"


def metric(text: str, name: str, labels: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not labels or labels in line):
            head, _, value = line.rpartition(" ")
            if re.fullmatch(rf"{re.escape(name)}(\{{.*\}})?", head):
                total += float(value)
    return total


def histogram(text: str, name: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for match in re.finditer(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M):
        bound = float("inf") if match[1] == "+Inf" else float(match[1])
        buckets[bound] = buckets.get(bound, 0.0) + float(match[2])
    return buckets


def quantile(buckets: dict[float, float], q: float) -> float:
    """Linear interpolation inside the bucket holding the q-th observation."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank, low, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return low
            share = (rank - below) / max(buckets[bound] - below, 1e-9)
            return low + share * (bound - low)
        low, below = bound, buckets[bound]
    return low


def measure(
    before: dict[str, Any], after: dict[str, Any], cameras: int, gating: bool
) -> dict[str, Any]:
    seconds = after["at"] - before["at"]
    latency: dict[float, float] = {}
    inferred = repeated = positions = 0.0
    for name, text in after["metrics"].items():
        old = before["metrics"][name]

        def delta(metric_name: str, labels: str = "", new: str = text, old: str = old) -> float:
            return metric(new, metric_name, labels) - metric(old, metric_name, labels)

        inferred += delta("locowatch_estimator_inferred_total")
        if not name.startswith("position."):
            continue
        repeated += delta("locowatch_estimator_repeated_total")
        positions += delta("locowatch_estimator_estimations_total", 'flow="prod"')
        new_h = histogram(text, "locowatch_estimator_latency_seconds")
        old_h = histogram(old, "locowatch_estimator_latency_seconds")
        for bound, count in new_h.items():
            latency[bound] = latency.get(bound, 0.0) + count - old_h.get(bound, 0.0)
    cpu = {k: after["cpu"].get(k, 0.0) - before["cpu"].get(k, 0.0) for k in after["cpu"]}
    cores = sum(cpu.values()) / seconds
    return {
        "cameras": cameras,
        "gating": gating,
        "seconds": round(seconds, 1),
        "positions_per_camera_s": round(positions / seconds / cameras, 2),
        "inferred_per_s": round(inferred / seconds, 1),
        "repeated_per_s": round(repeated / seconds, 1),
        "latency_median_s": round(quantile(latency, 0.5), 3),
        "latency_p95_s": round(quantile(latency, 0.95), 3),
        "cpu_cores": round(cores, 2),
        "cpu_per_camera": round(cores / cameras, 3),
        "cpu_by_service": {k: round(v / seconds, 2) for k, v in sorted(cpu.items())},
    }


def prod_position(config: FacilityConfig) -> str:
    """The position network of the facility's prod flow."""
    return next(f.position.model for f in config.flows if f.name == "prod")


def summary(run: dict[str, Any]) -> str:
    return (
        f"{run['cameras']:2d} cameras, {run.get('position_model', '')}, "
        f"gating {'on ' if run['gating'] else 'off'}: "
        f"{run['positions_per_camera_s']:.2f} positions/camera/s, "
        f"latency median {run['latency_median_s'] * 1000:.0f} ms p95 {run['latency_p95_s'] * 1000:.0f} ms, "  # noqa: E501
        f"{run['inferred_per_s']:.1f} network runs/s, CPU {run['cpu_cores']:.2f} cores "
        f"({run['cpu_per_camera']:.3f}/camera) {run['cpu_by_service']}"
    )


def gating_day(cameras: int = 4, fps: float = 1.0) -> dict[str, Any]:
    """Strips let through and departure delay on the twin's full day (600 s)."""
    from edge.aggregator.cutting import FrameCutter
    from edge.aggregator.gating import ChangeGate
    from locowatch.facility.config import ChangeGating
    from sim.datasets import bodies_in_view

    twin = Twin(TwinSpec(seed=SEED, scenario=ScenarioSpec(duration_s=DAY_S)))
    cutter = FrameCutter(twin.facility)
    gate = ChangeGate(ChangeGating())
    ids = bench_cameras(cameras)
    passed = total = still = still_passed = 0
    delays: list[float] = []
    for camera in ids:
        view = cutter.views[camera][0]
        if view.covered is None:
            continue
        moving_since: float | None = None
        previous: list[Any] = []
        for t in np.arange(0, DAY_S, 1 / fps):
            frame = twin.frame(camera, float(t))
            if frame is None:
                continue
            verdict = gate.check((camera, view.view.track), view.cut_strip(frame), float(t))
            total += 1
            passed += verdict.changed
            bodies = bodies_in_view(twin, view.view.track, view.covered, float(t))
            moved = _moved(previous, bodies)
            previous = bodies
            if not moved:
                still += 1
                still_passed += verdict.changed
            if moved and moving_since is None:
                moving_since = float(t)
            if moving_since is not None and verdict.changed:
                delays.append(float(t) - moving_since)
                moving_since = None
        print(f"gating: {camera} done ({passed}/{total} strips passed so far)", flush=True)
    return {
        "cameras": ids,
        "fps": fps,
        "strips": total,
        "passed_share": round(passed / max(total, 1), 3),
        "work_saved": round(1 - passed / max(total, 1), 3),
        "still_strips": still,
        "still_work_saved": round(1 - still_passed / max(still, 1), 3),
        "motion_onsets": len(delays),
        "departure_delay_median_s": round(float(np.median(delays)), 2) if delays else None,
        "departure_delay_max_s": round(float(np.max(delays)), 2) if delays else None,
    }


def _moved(before: list[Any], after: list[Any]) -> bool:
    ends = lambda bodies: sorted((round(b.tail_m, 1), round(b.head_m, 1)) for b in bodies)  # noqa: E731
    return bool(before) and ends(before) != ends(after)


if __name__ == "__main__":
    main()
