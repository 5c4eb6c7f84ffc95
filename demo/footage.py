"""The demo's camera footage: rendered once per seed, cameras and window, then reused.

Rendering the twin costs about 0.12 s of a core per frame, far more than a live demo can
spend, so the cameras are rendered to H.264 files first (with a progress bar) and
streamed from there as live RTSP cameras. The folder is complete once ``complete``
exists; an interrupted render is started again.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from sim.layout import LayoutSpec
from sim.recording import record
from sim.twin import TwinSpec

FPS = 2.0
FORMAT = 5  # bump when the recording or the rendering changes: cached footage is then re-rendered


def footage_folder(
    root: Path, spec: TwinSpec, cameras: list[str], window: tuple[float, float]
) -> Path:
    cameras_key = hashlib.sha256(",".join(cameras).encode()).hexdigest()[:8]
    start, end = window
    family = "" if spec.layout.family == "along" else f"-{spec.layout.family}"
    if not spec.variety.classic:  # a varied twin: its spec and renderer name the footage
        drawn = repr((spec.variety, spec.renderer)).encode()
        family += f"-varied{hashlib.sha256(drawn).hexdigest()[:8]}"
    if spec.layout.resolutions != LayoutSpec.resolutions:
        family += "-" + "+".join(spec.layout.resolutions)
    return root / (
        f"v{FORMAT}-seed{spec.seed}{family}-{start:.0f}-{end:.0f}s-{len(cameras)}cams-{cameras_key}"
    )


def render_footage(
    root: Path, spec: TwinSpec, cameras: list[str], window: tuple[float, float], jobs: int
) -> tuple[Path, bool]:
    """The recorded run for these cameras and window; True when it was rendered now."""
    folder = footage_folder(root, spec, cameras, window)
    if (folder / "complete").exists():
        return folder, False
    shutil.rmtree(folder, ignore_errors=True)
    record(spec, folder, FPS, cameras, jobs=jobs, progress=True, window=window)
    (folder / "complete").write_text("rendered\n", encoding="utf-8")
    return folder, True
