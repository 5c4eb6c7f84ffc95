"""What a TensorRT engine is built from, and where built engines are kept: everything of
the TensorRT engine that needs no GPU, so that CI exercises it with the real files.

- ``BuildSpec``: every input of a build (ONNX bytes, precision, batch and width profile,
  profiles, workspace, GPU, TensorRT version); its ``key`` names the cached plan.
- ``PlanCache``: plans on disk beside a sidecar with their checksum, written atomically
  (fsync, rename); a plan that is truncated, empty, or that TensorRT cannot deserialize
  (another TensorRT, a corrupt file) is removed and rebuilt once, never crash-looped on.
- ``build_lock``: one build at a time per cache folder across processes (three estimator
  processes start together on one volume); the second finds the first's plan.
- ``strip_widths``: the position network's dynamic width, bounded by the facility's views
  (checked at start, naming camera and view), not by a fixed 64-512 columns.
- ``ContextPool``: TensorRT needs one optimization profile per execution context in use at
  the same time; the pool hands out at most as many contexts as the engine has profiles.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import Counter

from locowatch.errors import UsageError
from locowatch.files import write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")

# Strip widths an engine accepts at least (6.4-51.2 m of track at 0.1 m a column): a
# facility whose views all fit keeps the same profile, and so the same cached plan.
DEFAULT_WIDTHS = (64, 512)
MIN_COLUMNS = 16  # 1.6 m: the position network's three 2x poolings need at least 8
MAX_COLUMNS = 2048  # 204.8 m: longer than any repair track a camera could cover
WIDTH_STEP = 64  # profile bounds are rounded outward to it: small view edits keep the plan

DISCARDED = Counter(
    "locowatch_engine_cache_discarded",
    "Cached TensorRT plans removed and rebuilt, by reason (checksum, unloadable).",
    ["reason"],
)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class BuildSpec:
    """Everything a TensorRT build depends on."""

    model: str  # name@version, for file names and logs
    onnx_sha256: str
    strongly_typed: bool  # built from the FP16 export; else FP32 with the FP16 flag
    profile: tuple[Shape, Shape, Shape]  # min, opt, max input shapes
    profiles: int  # identical optimization profiles: contexts usable at the same time
    workspace_bytes: int
    device: str  # GPU name
    compute_capability: str  # e.g. sm90
    tensorrt: str

    @property
    def key(self) -> str:
        fields = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(fields.encode()).hexdigest()[:24]

    @property
    def file_name(self) -> str:
        return f"{self.model.replace('@', '-')}-{self.key}.engine"


@dataclass(frozen=True)
class StripWidth:
    """One view's strip, as the aggregator cuts it: who it is and how many columns."""

    camera: str
    track: str
    columns: int

    @property
    def name(self) -> str:
        return f"camera {self.camera}, view of track {self.track}"


def strip_widths(views: Iterable[StripWidth]) -> tuple[int, int, int]:
    """(min, opt, max) columns of the engine's width profile for these views. A view
    outside MIN_COLUMNS..MAX_COLUMNS is an error naming it (with every engine: the CPU
    engine would run it, a GPU gateway could not)."""
    views = list(views)
    for view in views:
        if not MIN_COLUMNS <= view.columns <= MAX_COLUMNS:
            raise UsageError(
                f"{view.name}: its strip is {view.columns} columns "
                f"({view.columns / 10:.1f} m); views must be {MIN_COLUMNS / 10:.1f}-"
                f"{MAX_COLUMNS / 10:.1f} m long: split or shorten it in the facility file"
            )
    if not views:
        lo, hi = DEFAULT_WIDTHS
        return lo, (lo + hi) // 2, hi
    needed_lo = min(v.columns for v in views)
    needed_hi = max(v.columns for v in views)
    lo = DEFAULT_WIDTHS[0] if needed_lo >= DEFAULT_WIDTHS[0] else MIN_COLUMNS
    hi = max(DEFAULT_WIDTHS[1], -(-needed_hi // WIDTH_STEP) * WIDTH_STEP)
    typical = sorted(v.columns for v in views)[len(views) // 2]
    opt = min(max(round(typical / WIDTH_STEP) * WIDTH_STEP, lo), hi)
    return lo, opt, hi


def profile_shapes(
    input_shape: tuple[int | None, ...], max_batch: int, widths: tuple[int, int, int]
) -> tuple[Shape, Shape, Shape]:
    """min/opt/max input shapes: batch 1..max_batch, a dynamic width over ``widths``."""
    lo_w, opt_w, hi_w = widths
    rest = input_shape[1:]
    lo = (1, *(d or lo_w for d in rest))
    opt = (max(1, max_batch // 2), *(d or opt_w for d in rest))
    hi = (max_batch, *(d or hi_w for d in rest))
    return lo, opt, hi


def outside(shape: Shape, profile: tuple[Shape, Shape, Shape]) -> str | None:
    """Why ``shape`` is outside ``profile`` (None when inside): a message for the error."""
    lo, _, hi = profile
    if len(shape) != len(lo):
        return f"input of {len(shape)} dimensions, the engine takes {len(lo)}"
    for axis, (value, low, high) in enumerate(zip(shape, lo, hi, strict=True)):
        if not low <= value <= high:
            what = "batch" if axis == 0 else ("width" if axis == len(shape) - 1 else f"axis {axis}")
            return f"{what} {value} outside the engine's profile {low}..{high}"
    return None


class PlanCache:
    """Serialized plans in a folder, each with a sidecar ``.json`` (checksum, size, spec)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, spec: BuildSpec) -> Path:
        return self.folder / spec.file_name

    def load(self, spec: BuildSpec) -> bytes | None:
        """The cached plan if it is whole; a damaged one is removed (and counted)."""
        path = self.path(spec)
        sidecar = _sidecar(path)
        if not path.exists() and not sidecar.exists():
            return None
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            plan = path.read_bytes()
        except (OSError, ValueError) as exc:
            self.discard(spec, "checksum", f"incomplete: {exc}")
            return None
        if len(plan) != meta.get("size") or hashlib.sha256(plan).hexdigest() != meta.get("sha256"):
            self.discard(spec, "checksum", f"{len(plan)} bytes do not match their checksum")
            return None
        return plan

    def store(self, spec: BuildSpec, plan: bytes) -> Path:
        """The plan first, its sidecar last: a plan without a sidecar is never trusted."""
        path = self.path(spec)
        write_atomic(path, plan)
        meta = {"sha256": hashlib.sha256(plan).hexdigest(), "size": len(plan), **asdict(spec)}
        write_atomic(_sidecar(path), json.dumps(meta, indent=2) + "\n")
        return path

    def discard(self, spec: BuildSpec, reason: str, detail: str) -> None:
        path = self.path(spec)
        log.warning(
            "engine %s: cached plan %s removed (%s), rebuilding", spec.model, path.name, detail
        )
        DISCARDED.labels(reason).inc()
        _sidecar(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


@contextmanager
def build_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold the folder's build lock (an flock: released by the kernel if we die)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".build.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: waiting for another process building engines in %s", what, folder)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("%s: waited %.0f s for the build lock", what, time.monotonic() - started)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_build(
    cache: PlanCache,
    spec: BuildSpec,
    build: Callable[[], bytes],
    deserialize: Callable[[bytes], T | None],
) -> T:
    """The engine of ``spec``: from the cache when it loads, else built (once, under the
    folder's lock) and cached. A cached plan TensorRT cannot load is removed and rebuilt;
    a fresh plan that does not load either is an error, not a loop."""
    plan = cache.load(spec)
    if plan is not None:
        engine = deserialize(plan)
        if engine is not None:
            log.info("engine %s: cached %s", spec.model, cache.path(spec).name)
            return engine
        cache.discard(spec, "unloadable", "TensorRT could not deserialize it")
    with build_lock(cache.folder, f"engine {spec.model}"):
        plan = cache.load(spec)  # another process may have built it while we waited
        engine = deserialize(plan) if plan is not None else None
        if engine is not None:
            log.info("engine %s: built by another process, %s", spec.model, cache.path(spec).name)
            return engine
        plan = build()
        engine = deserialize(plan)
        if engine is None:
            raise RuntimeError(f"engine {spec.model}: TensorRT cannot load the plan it just built")
        cache.store(spec, plan)
        return engine


class ContextPool(Generic[T]):
    """At most ``size`` execution contexts (one per optimization profile); a caller takes a
    free one or waits. Contexts and their buffers belong to the pool, not to threads, so
    they outlive no thread's exit unfreed and are released together by ``close``."""

    def __init__(self, size: int, make: Callable[[int], T]) -> None:
        self._make = make
        self._size = size
        self._free: list[T] = []
        self._made: list[T] = []
        self._cond = threading.Condition()

    @contextmanager
    def acquire(self) -> Iterator[T]:
        with self._cond:
            while not self._free and len(self._made) >= self._size:
                self._cond.wait()
            if self._free:
                item = self._free.pop()
            else:
                item = self._make(len(self._made))  # its index is its profile
                self._made.append(item)
        try:
            yield item
        finally:
            with self._cond:
                self._free.append(item)
                self._cond.notify()

    def close(self, release: Callable[[T], None]) -> None:
        with self._cond:
            for item in self._made:
                release(item)
            self._made.clear()
            self._free.clear()
