"""The locowatch command: every subcommand has help; errors are one line and an exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from locowatch.cli import cli

REPO = Path(__file__).resolve().parents[2]
NAMED_IN_THE_BRIEF = ["db", "sim", "train", "eval", "edge", "cloud", "dashboard", "report", "demo"]


def test_top_level_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in [*NAMED_IN_THE_BRIEF, "config"]:
        assert f"\n  {name} " in result.output, name


@pytest.mark.parametrize(
    "args",
    [
        ["db"],
        ["db", "install"],
        ["db", "up"],
        ["db", "down"],
        ["db", "status"],
        ["db", "url"],
        ["config", "check"],
        ["config", "schema"],
        ["demo"],
        ["sim", "render"],
        ["sim", "layout"],
        ["sim", "frame"],
        ["sim", "serve"],
        ["sim", "feed"],
        ["cloud", "run"],
        ["cloud", "migrate"],
        ["cloud", "token"],
        ["cloud", "user"],
        ["report"],
        ["eval"],
        ["edge", "run"],
        ["edge", "plan"],
        ["edge", "capture"],
        ["edge", "aggregator"],
        ["edge", "estimator"],
        ["edge", "uplink"],
    ],
    ids=" ".join,
)
def test_every_subcommand_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_db_commands_share_the_db_flag_and_env() -> None:
    for verb in ("up", "down", "status", "url"):
        output = CliRunner().invoke(cli, ["db", verb, "--help"]).output
        assert "--db URL" in output and "LOCOWATCH_DB" in output, verb


def test_unknown_command_is_a_usage_error(locowatch_cli: Any) -> None:
    result = locowatch_cli("fly")
    assert result.returncode == 2 and "No such command 'fly'" in result.stderr


def test_config_check_reports_calibration(tmp_path: Path, locowatch_cli: Any) -> None:
    good = locowatch_cli("config", "check", "examples/depot.yaml")
    assert good.returncode == 0, good.stderr
    assert "6 cameras" in good.stdout and "cam-02: pose solved from point pairs" in good.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text((REPO / "examples/depot.yaml").read_text().replace("fps: 2", "fps: -2", 1))
    bad = locowatch_cli("config", "check", str(broken))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: {broken}:")
    assert "cameras[0].fps = -2: Input should be greater than 0" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_config_check_points_at_a_mistyped_point_pair(tmp_path: Path, locowatch_cli: Any) -> None:
    facility = yaml.safe_load((REPO / "examples/depot.yaml").read_text(encoding="utf-8"))
    camera = next(c for c in facility["cameras"] if c.get("point_pairs"))
    camera["point_pairs"][4]["world"][0] += 1.0  # one metre off: a typo in the survey
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(facility, allow_unicode=True), encoding="utf-8")
    result = locowatch_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    flagged = [line for line in result.stdout.splitlines() if "<- check the point pairs" in line]
    assert [line.split(":")[0].strip() for line in flagged] == [camera["id"]]
    worst = result.stdout.split("worst: ")[1].splitlines()[0]
    assert worst.startswith("point_pairs[4] "), worst


def test_config_schema_is_json_schema_of_the_facility_file() -> None:
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert set(schema["properties"]) >= {"version", "facility", "tracks", "cameras", "flows"}
    assert schema["additionalProperties"] is False
