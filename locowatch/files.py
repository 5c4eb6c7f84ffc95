"""Files written so that a crash or a power cut leaves the old content or the new, never
half of it (a temporary file beside the target, flushed to disk, renamed over it), and
files watched for a change (a users file, a renewed certificate)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (``mode``: its permission bits, set before
    the rename, so a secret is never readable by others, not even for a moment)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: two writers of one file never write into each other's.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())  # the bytes on disk before the name points at them
        if mode is not None:
            temp.chmod(mode)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


Stamp = tuple[tuple[int, int], ...]


def stamp(*paths: Path) -> Stamp:
    """What changes when any of ``paths`` is written or replaced: (mtime, size) of each,
    (0, 0) for one that is missing."""
    out = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            out.append((0, 0))
            continue
        out.append((stat.st_mtime_ns, stat.st_size))
    return tuple(out)
