"""The edge gateway's deployment files: generated from the plan, linted, verified by
systemd, and run: the units' own command lines as real processes on loopback twin
cameras, and the install script into a scratch root.

No Docker engine runs here, so the images are linted (hadolint), never built.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from edge.deploy import Layout, compose_file, systemd_units
from edge.plan import gateway_plan
from locowatch.facility import load_facility
from sim.streaming import TwinStreamer
from tests.edge.test_gateway import CAMERAS, gateway_file
from tests.edge.test_gateway import recording as recording  # noqa: PLC0414 (a fixture)
from tests.fixtures import processes

REPO = Path(__file__).resolve().parents[2]
EDGE = REPO / "deploy" / "edge"
EXAMPLE = REPO / "examples" / "depot.yaml"
BIN = Path(sys.executable).parent
LOCOWATCH = BIN / "locowatch"


def tool(name: str) -> Path:
    """A linter of the test extra, installed beside this Python."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing: pip install -e '.[test]' (it is in the test extra)")
    return path


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def unit_entries(text: str, section: str = "Service") -> list[tuple[str, str]]:
    """(key, value) pairs of one section of a unit file, repeated keys kept in order."""
    entries, current = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and not line.startswith("#") and current == section:
            key, value = line.split("=", 1)
            entries.append((key, value))
    return entries


# --- generated files ---------------------------------------------------------------------


def test_the_committed_files_are_what_the_generator_makes_of_the_example() -> None:
    plan = gateway_plan(load_facility(EXAMPLE))
    committed = {p.name: p.read_text() for p in (EDGE / "systemd").iterdir()}
    assert committed == systemd_units(plan), (
        "deploy/edge/systemd is stale: locowatch edge deploy systemd "
        "--config examples/depot.yaml --out deploy/edge/systemd"
    )
    assert (EDGE / "compose.yaml").read_text() == compose_file(plan), (
        "deploy/edge/compose.yaml is stale: locowatch edge deploy compose "
        "--config examples/depot.yaml --out deploy/edge"
    )


def test_the_compose_file_runs_every_service_of_the_plan_as_its_own_container() -> None:
    plan = gateway_plan(load_facility(EXAMPLE))
    document = yaml.safe_load((EDGE / "compose.yaml").read_text())
    services = document["services"]
    commands = sorted(" ".join(s["command"]) for s in services.values())
    # one container per process of the plan, each running the plan's command line
    assert commands == sorted(" ".join(s.arguments(Layout().config)) for s in plan.services)
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["network_mode"] == "host", name
        test = service["healthcheck"]["test"]
        assert test[:4] == ["CMD", "locowatch", "edge", "health"], name
        mounts = {m["target"]: m for m in service["volumes"]}
        assert mounts["/etc/locowatch"]["read_only"] is True, name  # config, token: read-only
        assert mounts["/var/lib/locowatch"]["source"] == "gateway-data", name
        assert service["environment"]["LOCOWATCH_DATA_DIR"].startswith("/var/lib/locowatch/")
        gpu = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        # the GPU goes to estimators that may run TensorRT, not to the CPU-pinned one
        wants_gpu = service["command"][1] == "estimator" and not name.endswith(".cpu")
        assert bool(gpu) == wants_gpu, name
    assert "gateway-data" in document["volumes"]


def test_unit_and_container_names_never_contain_a_template_at() -> None:
    units = systemd_units(gateway_plan(load_facility(EXAMPLE)))
    services = [name for name in units if name.endswith(".service") and "retry@" not in name]
    assert "locowatch-edge-plate.plate-v3.cpu.service" in services
    assert all("@" not in name for name in services)
    wants = dict(unit_entries(units["locowatch-edge.target"], "Unit"))["Wants"].split()
    assert sorted(wants) == sorted(services)


# --- linters and systemd -----------------------------------------------------------------


def test_hadolint_passes_the_edge_dockerfile() -> None:
    result = run(tool("hadolint"), EDGE / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_every_deploy_script() -> None:
    scripts = sorted((REPO / "deploy").rglob("*.sh"))
    assert EDGE / "install.sh" in scripts
    result = run(tool("shellcheck"), *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def systemd_analyze() -> Path:
    """systemd-analyze, where it can verify units here; skip (saying why) where it cannot."""
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return Path(found)


def test_systemd_verifies_the_generated_units(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    probe = tmp_path / "probe" / "probe.service"
    probe.parent.mkdir()
    probe.write_text("[Service]\nExecStart=/bin/true\n")
    if (check := run(analyze, "verify", "--man=no", probe)).returncode != 0:
        pytest.skip(f"systemd-analyze verify cannot run here: {check.stderr.strip()}")
    plan = gateway_plan(load_facility(EXAMPLE))
    # The real layout but an executable that exists here (verify checks ExecStart).
    units = systemd_units(plan, replace(Layout(), executable=str(LOCOWATCH)))
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text)
    retry = "locowatch-edge-retry@locowatch-edge-uplink.service.service"
    targets = [*(n for n in units if "retry@" not in n), retry]
    result = run(analyze, "verify", "--man=no", *targets, cwd=folder)
    # Unknown keys and bad values are only warnings: nothing at all may be printed.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- the units' command lines as real processes ------------------------------------------


def start_unit(text: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a service unit's ExecStart= with its Environment= and EnvironmentFile=."""
    env = dict(os.environ)
    for key, value in unit_entries(text):
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "EnvironmentFile" and Path(value.lstrip("-")).exists():
            for line in Path(value.lstrip("-")).read_text().splitlines():
                if line and not line.startswith("#"):
                    name, _, setting = line.partition("=")
                    env[name] = setting
    (command,) = (value for key, value in unit_entries(text) if key == "ExecStart")
    argv = shlex.split(command.replace("%%", "%"))
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def installed_gateway(recording: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The units of a twin gateway (3 RTSP cameras), started as systemd would start them."""
    with TwinStreamer(list(CAMERAS), recording=recording, fps=2.0) as streamer:
        config = gateway_file(tmp_path, streamer.urls(), "127.0.0.1:1")  # no cloud needed
        env_file = tmp_path / "edge.env"
        env_file.write_text("# log settings\nLOCOWATCH_LOG_LEVEL=INFO\n")
        layout = Layout(
            executable=str(LOCOWATCH),
            config=str(config),
            env_file=str(env_file),
            state_dir=str(tmp_path / "state"),
            models=str(REPO / "models"),
        )
        units = systemd_units(gateway_plan(load_facility(config)), layout)
        log = tmp_path / "services.log"
        started = [
            start_unit(text, log)
            for name, text in units.items()
            if name.endswith(".service") and "retry@" not in name
        ]
        try:
            yield config, tmp_path / "state"
        finally:
            for process in started:  # all at once: each takes a few seconds to stop
                process.send_signal(signal.SIGTERM)
            for process in started:
                processes.stop(process)


@pytest.mark.slow
def test_the_units_command_lines_run_a_gateway_that_reports_serving(
    installed_gateway: tuple[Path, Path], tmp_path: Path
) -> None:
    config, state = installed_gateway
    health = [LOCOWATCH, "edge", "health", "--all", "--config", config, "--timeout", "2"]
    deadline, result = time.monotonic() + 90, run(*health)
    while result.returncode != 0 and time.monotonic() < deadline:
        time.sleep(1.0)
        result = run(*health)
    text = (tmp_path / "services.log").read_text()
    # What a service that does not serve said, wherever it is in the log, then its tail.
    down = [line.split()[0] for line in result.stdout.splitlines() if not line.endswith(" SERVING")]
    said = [line for line in text.splitlines() if any(name in line for name in down)]
    log = "\n".join(said[-40:]) + "\n...\n" + text[-4000:]
    assert result.returncode == 0, result.stdout + log
    plan = gateway_plan(load_facility(config))
    lines = result.stdout.splitlines()
    assert len(lines) == len(plan.services) and all(x.endswith(" SERVING") for x in lines)
    one = run(LOCOWATCH, "edge", "health", "--config", config, "--service", "uplink")
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 1
    # Data flows (camera health, then estimations) into the uplink's queue, which is under
    # the unit's LOCOWATCH_DATA_DIR, not the facility file's data_dir.
    deadline = time.monotonic() + 30
    while published(plan.uplink.metrics_port) == 0 and time.monotonic() < deadline:
        time.sleep(1.0)
    assert published(plan.uplink.metrics_port) > 0, log
    assert (state / "gateway" / "uplink").is_dir()
    assert not (tmp_path / "gateway").exists()


def published(metrics_port: int | None) -> float:
    """Envelopes the uplink committed to its queue, from its Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "locowatch_uplink_published_total":
                return float(sample.value)
    raise AssertionError("the uplink exports no locowatch_uplink_published_total")


# --- the install script ------------------------------------------------------------------


@pytest.mark.slow
def test_the_install_script_installs_into_a_root_and_can_run_again(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("install.sh creates a system user and root-owned folders: needs root")
    root, token = tmp_path / "root", tmp_path / "gw.token"
    token.write_text("token-of-the-test\n")
    install = [EDGE / "install.sh", "--config", EXAMPLE, "--token", token, "--root", root]
    # Byte-compiling every dependency is for production; here it only costs time.
    env = {**os.environ, "PIP_NO_COMPILE": "1"}
    first = run(*install, env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr

    units = root / "etc" / "systemd" / "system"
    plan = gateway_plan(load_facility(EXAMPLE))
    assert {p.name for p in units.glob("locowatch-edge*")} == set(systemd_units(plan))
    assert (units / "multi-user.target.wants" / "locowatch-edge.target").is_symlink()
    etc, state = root / "etc" / "locowatch", root / "var" / "lib" / "locowatch"
    accounts = (root / "etc" / "passwd").read_text().splitlines()
    uid = int(next(a for a in accounts if a.startswith("locowatch:")).split(":")[2])
    assert (etc.stat().st_mode & 0o777, etc.stat().st_uid) == (0o750, 0)
    assert (etc / "facility.yaml").stat().st_mode & 0o777 == 0o640
    secret = etc / "secrets" / "gateway.token"  # where the example's token_file points
    assert secret.read_text() == token.read_text() and secret.stat().st_mode & 0o777 == 0o640
    assert (state / "gateway").stat().st_uid == uid
    venv = root / "opt" / "locowatch" / "venv" / "bin" / "locowatch"
    assert run(venv, "--version").returncode == 0

    # Again, with the dev flow gone: its CPU plate reader's unit goes, the edited env stays.
    (etc / "edge.env").write_text("LOCOWATCH_LOG_LEVEL=DEBUG\n")
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["flows"] = [flow for flow in raw["flows"] if flow["name"] == "prod"]
    smaller = tmp_path / "examples" / "depot.yaml"  # same folder depth: same relative paths
    smaller.parent.mkdir()
    smaller.write_text(yaml.safe_dump(raw))
    install[2] = smaller
    second = run(*install, env=env, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert not (units / "locowatch-edge-plate.plate-v3.cpu.service").exists()
    assert (units / "locowatch-edge-plate.plate-v4.service").exists()
    assert (etc / "edge.env").read_text() == "LOCOWATCH_LOG_LEVEL=DEBUG\n"
