"""The TensorRT engine's file handling and bounds, on CI without a GPU: cached plans are
checked and rebuilt instead of crash-looping, one process builds at a time, the width
profile comes from the facility's views, contexts never outnumber profiles, and both
ONNX exports are hash-checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from edge.engines import open_engine
from edge.engines.plans import (
    BuildSpec,
    ContextPool,
    PlanCache,
    StripWidth,
    load_or_build,
    outside,
    profile_shapes,
    strip_widths,
)
from edge.estimators.service import strips
from locowatch.errors import UsageError
from locowatch.files import write_atomic
from locowatch.models.artefacts import Artefact, resolve
from sim.twin import Twin
from tests.conftest import REPO, LocowatchCli

SPEC = BuildSpec(
    model="position@3",
    onnx_sha256="ab" * 32,
    strongly_typed=True,
    profile=((1, 3, 56, 64), (8, 3, 56, 256), (16, 3, 56, 512)),
    profiles=1,
    workspace_bytes=1 << 30,
    device="NVIDIA H100 80GB HBM3",
    compute_capability="sm90",
    tensorrt="10.8.0",
)


def test_the_cache_key_covers_every_input_of_a_build() -> None:
    changes = {
        "onnx_sha256": "cd" * 32,
        "strongly_typed": False,
        "profile": ((1, 3, 56, 64), (8, 3, 56, 256), (16, 3, 56, 640)),
        "profiles": 2,
        "workspace_bytes": 1 << 31,
        "device": "NVIDIA L4",
        "compute_capability": "sm89",
        "tensorrt": "11.1.0",
    }
    keys = {SPEC.key} | {replace(SPEC, **{k: v}).key for k, v in changes.items()}  # type: ignore[arg-type]
    assert len(keys) == len(changes) + 1


def test_a_damaged_cached_plan_is_removed_not_loaded(tmp_path: Path) -> None:
    cache = PlanCache(tmp_path)
    cache.store(SPEC, b"plan bytes" * 100)
    assert cache.load(SPEC) == b"plan bytes" * 100
    path = cache.path(SPEC)
    path.write_bytes(b"plan bytes")  # truncated
    assert cache.load(SPEC) is None
    assert not path.exists() and not path.with_name(path.name + ".json").exists()
    cache.store(SPEC, b"plan")
    path.write_bytes(b"")  # what a power cut after a rename without fsync can leave
    assert cache.load(SPEC) is None
    write_atomic(path, b"plan")  # a plan whose sidecar never got written
    assert cache.load(SPEC) is None and not path.exists()


def test_an_unloadable_plan_is_rebuilt_once_and_a_bad_build_is_an_error(tmp_path: Path) -> None:
    cache = PlanCache(tmp_path)
    cache.store(SPEC, b"from another TensorRT")
    builds: list[bytes] = []

    def build() -> bytes:
        builds.append(b"fresh plan")
        return b"fresh plan"

    def deserialize(plan: bytes) -> str | None:
        return "engine" if plan == b"fresh plan" else None  # as TensorRT: None, no raise

    assert load_or_build(cache, SPEC, build, deserialize) == "engine"
    assert builds == [b"fresh plan"] and cache.load(SPEC) == b"fresh plan"
    assert load_or_build(cache, SPEC, build, deserialize) == "engine"
    assert len(builds) == 1  # loaded from the cache the second time

    other = replace(SPEC, tensorrt="11.1.0")
    with pytest.raises(RuntimeError, match="cannot load the plan it just built"):
        load_or_build(cache, other, lambda: b"broken", deserialize)
    assert cache.load(other) is None  # nothing cached to fail on at the next start


# Run by each of three processes: build the plan (slowly, logging it) unless it is there.
BUILDER = """
import json, sys, time
from pathlib import Path
from edge.engines.plans import BuildSpec, PlanCache, load_or_build
folder, log, spec = Path(sys.argv[1]), sys.argv[2], BuildSpec(**json.loads(sys.argv[3]))
def build():
    with open(log, "a") as out:
        out.write("built\\n")
    time.sleep(1.0)
    return b"the plan"
assert load_or_build(PlanCache(folder), spec, build, lambda plan: plan) == b"the plan"
"""


def test_processes_starting_together_build_once(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    spec = json.dumps(asdict(SPEC))
    processes = [
        subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path / "cache"), str(log), spec])
        for _ in range(3)
    ]
    assert [process.wait(60) for process in processes] == [0, 0, 0]
    assert log.read_text().splitlines() == ["built"]
    assert [p.name for p in (tmp_path / "cache").glob("*.engine")] == [SPEC.file_name]


def test_the_width_profile_comes_from_the_facility_views() -> None:
    twin_views = strips(Twin().facility)
    lo, _, hi = strip_widths(twin_views)
    assert (lo, hi) == (64, 512)  # every twin view fits the usual profile: the same plan
    assert lo <= min(v.columns for v in twin_views) and max(v.columns for v in twin_views) <= hi
    long = [*twin_views, StripWidth("cam-40", "T3", 600)]  # a 60 m view
    assert strip_widths(long)[2] == 640
    assert profile_shapes((None, 3, 56, None), 16, (64, 256, 640)) == (
        (1, 3, 56, 64), (8, 3, 56, 256), (16, 3, 56, 640)
    )  # fmt: skip
    with pytest.raises(
        UsageError, match=r"camera cam-41, view of track T1: its strip is 9 columns"
    ):
        strip_widths([*twin_views, StripWidth("cam-41", "T1", 9)])
    with pytest.raises(UsageError, match=r"camera cam-42, view of track T2: .*204.8 m"):
        strip_widths([StripWidth("cam-42", "T2", 3000)])


def test_a_view_no_engine_could_run_is_refused_by_the_cpu_engine_too() -> None:
    with pytest.raises(UsageError, match="camera cam-41"):
        open_engine(resolve("position@3"), "cpu", views=[StripWidth("cam-41", "T1", 9)])
    open_engine(resolve("model@3"), "cpu", views=[StripWidth("cam-41", "T1", 9)])  # no width


def test_inputs_outside_the_profile_are_named() -> None:
    assert outside((16, 3, 56, 512), SPEC.profile) is None
    assert outside((17, 3, 56, 300), SPEC.profile) == "batch 17 outside the engine's profile 1..16"
    assert (
        outside((2, 3, 56, 700), SPEC.profile) == "width 700 outside the engine's profile 64..512"
    )
    assert outside((2, 3, 56), SPEC.profile) == "input of 3 dimensions, the engine takes 4"


def test_contexts_never_outnumber_profiles() -> None:
    made: list[int] = []
    busy = [0]
    most = [0]
    lock = threading.Lock()
    pool: ContextPool[int] = ContextPool(2, lambda profile: made.append(profile) or profile)

    def use() -> None:
        with pool.acquire():
            with lock:
                busy[0] += 1
                most[0] = max(most[0], busy[0])
            time.sleep(0.05)
            with lock:
                busy[0] -= 1

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [0, 1] and most[0] == 2  # profile 0 and 1, never a third at once
    released: list[int] = []
    pool.close(released.append)
    assert sorted(released) == [0, 1]


def test_both_onnx_exports_are_checked_against_meta(tmp_path: Path) -> None:
    for ref in ("position@3", "model@3", "plate@5"):
        resolve(ref).verify()
    folder = tmp_path / "position-3"
    shutil.copytree(resolve("position@3").folder, folder)
    with (folder / "model.fp16.onnx").open("ab") as export:
        export.write(b"\0")  # changed after training
    with pytest.raises(UsageError, match=r"model.fp16.onnx: sha256 .* differs"):
        Artefact.load(folder).verify()
    text = (folder / "meta.json").read_text(encoding="utf-8")
    (folder / "meta.json").write_text(
        "\n".join(line for line in text.splitlines() if "sha256_fp16" not in line) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError, match="no sha256_fp16"):
        Artefact.load(folder).verify()


def test_concurrent_atomic_writes_leave_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "timing.cache"
    payloads = [bytes([i]) * 200_000 for i in range(6)]

    def write(data: bytes) -> None:
        for _ in range(5):
            write_atomic(path, data)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["timing.cache"]  # no temporary left


def test_engines_are_opened_before_the_gateway_starts(
    tmp_path: Path, locowatch_cli: LocowatchCli
) -> None:
    """`locowatch edge engines` (at deploy): every estimator's engine opened and closed;
    on a GPU gateway that builds and caches the plans, everywhere it checks the views."""
    example = REPO / "examples" / "depot.yaml"
    opened = locowatch_cli("edge", "engines", "--config", str(example))
    assert opened.returncode == 0, opened.stderr
    names = [line.split()[0] for line in opened.stdout.splitlines()]
    assert names and all(name.startswith(("position", "model", "plate")) for name in names)
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    raw["cameras"][0]["views"][0]["end_m"] = raw["cameras"][0]["views"][0]["start_m"] + 1.0
    raw["gateway"]["data_dir"] = str(tmp_path / "gateway")
    short = tmp_path / "depot.yaml"
    short.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    refused = locowatch_cli("edge", "engines", "--config", str(short))
    assert refused.returncode == 2
    assert "camera cam-01, view of track T1: its strip is 10 columns (1.0 m)" in refused.stderr
