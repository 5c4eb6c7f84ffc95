"""Which families of depot a training set was drawn from, and which a held-out set adds.

A number measured only on what a network was trained on is not a result: every model card
reports each held-out set beside the families of it that no training set held (docs/twin.md
"Variety"). Sets written before the manifest recorded families, and a facility's own
footage, count as the classic twin's along depot.
"""

from __future__ import annotations

from typing import Any

FACTORS = ("camera", "resolution", "geometry", "livery", "hall")


def families(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Per factor, the families a set drew from (its manifest, docs/datasets.md); a set
    of pasted plates (``locowatch sim paste-plates``) drew from its backgrounds'."""
    if manifest.get("source") == "pasted":
        merged: dict[str, list[str]] = {factor: [] for factor in FACTORS}
        for background in manifest.get("backgrounds", []):
            for factor, drawn in families(background).items():
                merged[factor] += [f for f in drawn if f not in merged[factor]]
        return merged
    variety = manifest.get("variety") or {}
    return {
        "camera": [manifest.get("camera_family") or "along"],
        "resolution": list(manifest.get("resolution") or ["720p"]),
        "geometry": list(variety.get("geometry") or ["classic"]),
        "livery": list(variety.get("livery") or ["classic"]),
        "hall": [manifest.get("hall") or "classic"],
    }


def unseen(held_out: dict[str, list[str]], trained: list[dict[str, list[str]]]) -> list[str]:
    """``factor=family`` for each family of the held-out set that no training set held."""
    out = []
    for factor in FACTORS:
        seen = {family for t in trained for family in t.get(factor, [])}
        out += [f"{factor}={f}" for f in held_out.get(factor, []) if f not in seen]
    return out
