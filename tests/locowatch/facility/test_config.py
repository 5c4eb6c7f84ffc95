"""The facility file: the example loads; broken files get an error naming line, key and why."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from locowatch.facility import FacilityConfigError, load_facility
from locowatch.facility.loading import parse_facility

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "depot.yaml"

Edit = Callable[[dict[str, Any]], None]


def test_example_facility_loads() -> None:
    facility = load_facility(EXAMPLE)
    assert facility.facility.id == "depot-example"
    assert [t.id for t in facility.tracks] == ["T1", "T2"]
    assert [s.id for s in facility.stations_on("T2")] == ["T2-S1", "T2-S2", "T2-S3"]
    assert facility.station_of("T2", 0.0, 1000.0) is None  # mostly off any one station
    # stations per track are worked out once; a copy with other stations works them out again
    fewer = facility.model_copy(update={"stations": facility.stations_on("T1")})
    assert fewer.stations_on("T2") == [] and len(facility.stations_on("T2")) == 3
    assert {f.name for f in facility.flows} == {"prod", "dev"}
    assert set(facility.flow_by_name["prod"].attributes) == {"model", "plate"}
    posed = [c.id for c in facility.cameras if c.pose is not None]
    surveyed = [c.id for c in facility.cameras if c.point_pairs is not None]
    assert posed and surveyed, "the example shows both ways to calibrate a camera"
    # relative paths resolve against the file's folder, not the working directory
    assert facility.gateway is not None
    assert facility.gateway.cloud.token_file == EXAMPLE.parent / "secrets" / "gateway.token"
    assert facility.gateway.data_dir == EXAMPLE.parent / ".." / "var" / "gateway"


def test_default_gateway_data_dir_is_next_to_the_file(tmp_path: Path) -> None:
    data = _example()
    del data["gateway"]["data_dir"]
    facility = parse_facility(yaml.safe_dump(data), tmp_path / "facility.yaml")
    assert facility.gateway is not None
    assert facility.gateway.data_dir == tmp_path / "var" / "gateway"


def test_every_camera_view_overlaps_its_neighbour() -> None:
    """Neighbouring cameras overlap a little, so no stretch of track goes unseen."""
    facility = load_facility(EXAMPLE)
    for track in facility.tracks:
        spans = sorted(
            (v.start_m, v.end_m) for c in facility.cameras for v in c.views if v.track == track.id
        )
        assert spans[0][0] <= 5 and spans[-1][1] >= track.length_m - 5
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start < end, f"gap on {track.id} between {end} and {start}"


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _set(*path: str | int, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(*path: str | int) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _both_pose_and_pairs(data: dict[str, Any]) -> None:
    data["cameras"][1]["pose"] = copy.deepcopy(data["cameras"][0]["pose"])


def _overlapping_station(data: dict[str, Any]) -> None:
    data["stations"][1]["start_m"] = 40  # T1-S1 ends at 50


def _duplicate_camera(data: dict[str, Any]) -> None:
    data["cameras"][1]["id"] = data["cameras"][0]["id"]


def _misspelt_key(data: dict[str, Any]) -> None:
    data["cameras"][0]["fsp"] = data["cameras"][0].pop("fps")


BROKEN: list[tuple[str, Edit, str, str]] = [
    # (case, edit of the example, dotted key expected in the error, words expected in it)
    (
        "negative focal length",
        _set("cameras", 0, "intrinsics", "fx", value=-900),
        "cameras[0].intrinsics.fx",
        "greater than 0",
    ),
    (
        "station on a track that does not exist",
        _set("stations", 1, "track", value="T9"),
        "stations[1].track",
        "unknown track 'T9'",
    ),
    (
        "station past the end of its track",
        _set("stations", 2, "end_m", value=170),
        "stations[2].end_m",
        "past the end of track 'T1'",
    ),
    ("stations overlapping", _overlapping_station, "stations[1].start_m", "overlap"),
    (
        "station ending before it starts",
        _set("stations", 0, "end_m", value=2),
        "stations[0]",
        "must be below end_m",
    ),
    (
        "pose and point pairs both given",
        _both_pose_and_pairs,
        "cameras[1]",
        "exactly one of 'pose' or 'point_pairs'",
    ),
    (
        "too few point pairs",
        _set("cameras", 1, "point_pairs", value=[{"image": [1, 2], "world": [0, 0, 0]}] * 3),
        "cameras[1]",
        "at least 6 points",
    ),
    ("misspelt key", _misspelt_key, "cameras[0].fsp", "Extra inputs are not permitted"),
    (
        "three distortion coefficients",
        _set("cameras", 0, "distortion", value=[0.1, 0, 0]),
        "cameras[0].distortion",
        "got 3",
    ),
    ("duplicate camera id", _duplicate_camera, "cameras[1].id", "duplicate id 'cam-01'"),
    (
        "unsupported source scheme",
        _set("cameras", 0, "source", value="ftp://x/cam.mp4"),
        "cameras[0].source",
        "unsupported source scheme 'ftp'",
    ),
    (
        "camera view past the end of the track",
        _set("cameras", 0, "views", 0, "end_m", value=400),
        "cameras[0].views[0].end_m",
        "past the end of track",
    ),
    (
        "view of an unknown track",
        _set("cameras", 2, "views", 1, "track", value="T3"),
        "cameras[2].views[1].track",
        "unknown track 'T3'",
    ),
    ("missing tracks", _delete("tracks"), "tracks", "Field required"),
    (
        "NaN in a track origin",
        _set("tracks", 0, "origin", value=[math.nan, 0]),
        "tracks[0].origin[0]",
        "finite number",
    ),
    ("unknown config version", _set("version", value=2), "version", "Input should be 1"),
    (
        "unknown time zone",
        _set("facility", "timezone", value="Mars/Olympus"),
        "facility.timezone",
        "unknown IANA time zone",
    ),
    (
        "bad ingest endpoint",
        _set("gateway", "cloud", "endpoint", value="no port here"),
        "gateway.cloud.endpoint",
        "should match pattern",
    ),
    (
        "plate form that is no regular expression",
        _set("flows", 0, "attributes", "plate", "accept", value="[0-9"),
        "flows[0].attributes.plate.accept",
        "is not a regular expression",
    ),
    (
        "position estimator given a reading form",
        _set("flows", 1, "position", "accept", value="[0-9]+"),
        "flows[1]",
        "'accept' is for attribute estimators",
    ),
    (
        "principal point outside the image",
        _set("cameras", 3, "intrinsics", "cx", value=5000),
        "cameras[3]",
        "outside the 1280x720 image",
    ),
]


@pytest.mark.parametrize(("case", "edit", "key", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_key_line_and_reason(
    case: str, edit: Edit, key: str, words: str
) -> None:
    data = _example()
    edit(data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    with pytest.raises(FacilityConfigError) as caught:
        parse_facility(text, Path("facility.yaml"))
    problems = caught.value.problems
    assert [p.key for p in problems] == [key], f"{case}: {caught.value}"
    problem = problems[0]
    assert words in problem.message, f"{case}: {problem.message}"
    assert str(problem).startswith(f"facility.yaml:{problem.line}: {key}")
    # The line named holds the key, or starts the list item at fault; a missing key
    # points at the start of the section it is missing from.
    assert problem.line is not None
    line_text = text.splitlines()[problem.line - 1]
    leaf = key.rsplit(".", 1)[-1].split("[", maxsplit=1)[0]
    missing = f"{leaf}:" not in text
    assert leaf in line_text or line_text.lstrip().startswith("-") or missing, line_text


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "facility.yaml"
    path.write_text("version: 1\nfacility:\n  id: [unclosed\n  name: x\n")
    with pytest.raises(FacilityConfigError) as caught:
        load_facility(path)
    assert str(caught.value).startswith(f"{path}:")
    assert caught.value.problems[0].line in (3, 4)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FacilityConfigError, match="cannot read file"):
        load_facility(tmp_path / "nope.yaml")


def test_several_errors_are_reported_together() -> None:
    data = _example()
    data["cameras"][0]["fps"] = 0
    data["tracks"][1]["length_m"] = -1
    with pytest.raises(FacilityConfigError) as caught:
        parse_facility(yaml.safe_dump(data), Path("f.yaml"))
    assert {p.key for p in caught.value.problems} == {"cameras[0].fps", "tracks[1].length_m"}


def test_token_is_read_as_a_secret(tmp_path: Path) -> None:
    data = _example()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gateway.token").write_text("s3cret-token\n")
    facility = parse_facility(yaml.safe_dump(data), tmp_path / "facility.yaml")
    assert facility.gateway is not None
    token = facility.gateway.cloud.read_token()
    assert token.get_secret_value() == "s3cret-token"
    assert "s3cret" not in repr(token) and "s3cret" not in str(facility)


def test_camera_logins_by_reference_reach_the_gateway_and_no_copy(
    tmp_path: Path, locowatch_cli: Any
) -> None:
    """A camera's password from an environment variable or a file, written into the URL
    only when the gateway opens it; the cloud refuses a file that carries one inline, and
    `config strip-secrets` makes the copy it takes."""
    from cloud.config import load_cloud_config, load_facilities
    from locowatch.errors import UsageError

    data = _example()
    cameras = data["cameras"]
    cameras[0]["source"] = "rtsp://10.20.0.11:554/Streaming/Channels/101"
    cameras[0]["credentials"] = {"username": "locowatch", "password_env": "LW_CAM01_PASSWORD"}
    cameras[1]["source"] = "rtsp://10.20.0.12/stream1"
    cameras[1]["credentials"] = {"username": "viewer", "password_file": "cam-02.password"}
    (tmp_path / "cam-02.password").write_text("p@ss/word:2\n", encoding="utf-8")
    path = tmp_path / "facility.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    facility = load_facility(path)
    first, second = facility.cameras[0], facility.cameras[1]
    assert first.source_url({"LW_CAM01_PASSWORD": "s3cret"}) == (
        "rtsp://locowatch:s3cret@10.20.0.11:554/Streaming/Channels/101"
    )
    assert second.source_url({}) == "rtsp://viewer:p%40ss%2Fword%3A2@10.20.0.12/stream1"
    with pytest.raises(ValueError, match="camera cam-01: environment variable LW_CAM01_PASSWORD"):
        first.source_url({})
    checked = locowatch_cli("config", "check", str(path), env={"PATH": "/usr/bin"})
    assert "cam-01: environment variable LW_CAM01_PASSWORD is not set" in checked.stderr

    # The cloud takes this file as it is: it holds no secret ...
    cloud = tmp_path / "cloud.yaml"
    cloud.write_text(
        "version: 1\nfacilities: [facility.yaml]\ngateways: [{id: gw, facility: "
        f"{facility.facility.id}, token_sha256: '{'a' * 64}'}}]\n"
    )
    assert list(load_facilities(load_cloud_config(cloud))) == [facility.facility.id]
    # ... but not one with a password inline, which the gateway still accepts.
    cameras[2]["source"] = "rtsp://admin:hunter2@10.20.0.13/stream1"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert load_facility(path).cameras[2].inline_password
    with pytest.raises(UsageError, match="camera passwords in the source URLs of cam-03"):
        load_facilities(load_cloud_config(cloud))
    stripped = locowatch_cli("config", "strip-secrets", str(path), "--out", str(path))
    assert stripped.returncode == 0, stripped.stderr
    assert "hunter2" not in path.read_text(encoding="utf-8")
    assert load_facility(path).cameras[2].source == "rtsp://10.20.0.13/stream1"
    assert "password_env: LW_CAM01_PASSWORD" in path.read_text(encoding="utf-8")
    assert list(load_facilities(load_cloud_config(cloud))) == [facility.facility.id]
