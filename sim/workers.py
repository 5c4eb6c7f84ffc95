"""Per-camera work spread over processes, with one progress bar for all of it.

Rendering is CPU-bound Python and NumPy, so cameras go to separate processes; each worker
reports every frame it finishes on a queue, which the parent turns into the progress bar.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm import tqdm

Result = TypeVar("Result")


def per_camera(
    work: Callable[..., Result],
    cameras: Sequence[str],
    args: tuple[Any, ...],
    frames_per_camera: int,
    jobs: int,
    desc: str,
    progress: bool = True,
) -> list[Result]:
    """Run ``work(camera, *args, ticks)`` for each camera; ``ticks.put(1)`` per frame done.

    Returns the results in camera order; a worker's exception is raised here.
    """
    total = frames_per_camera * len(cameras)
    with multiprocessing.Manager() as manager:
        ticks = manager.Queue()
        bar = tqdm(total=total, desc=desc, unit="frame", disable=not progress)
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(work, camera, *args, ticks) for camera in cameras]
            done = 0
            while done < total and not any(f.done() and f.exception() for f in futures):
                try:
                    done += ticks.get(timeout=0.5)
                    bar.update(1)
                except queue.Empty:
                    continue
            results = [future.result() for future in futures]
        bar.close()
    return results
