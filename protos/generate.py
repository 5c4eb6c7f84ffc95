"""Generate the Python stubs of the locowatch protos.

The stubs are committed under ``locowatch/v1/`` so that running the services needs no
protoc. Regenerate after editing a ``.proto``::

    python protos/generate.py            # writes into the repository
    python protos/generate.py --out DIR  # writes elsewhere (the stale-stub test)

The generator is ``grpcio-tools`` pinned in the ``test`` extra, so the output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent


def proto_files() -> list[Path]:
    """All .proto sources, relative to the proto root, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every proto and return the files written under ``out_dir``."""
    from grpc_tools import protoc  # imported here: only the generator needs grpcio-tools

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed, see the messages above")
    return sorted(p for p in (out_dir / "locowatch").rglob("*_pb2*.py*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (default: repo)")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
