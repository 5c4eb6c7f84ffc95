"""The cloud side's terraform: it parses, it keeps the promises a reviewer cares about, and
checkov finds nothing (no terraform binary here: python-hcl2 parses, checkov scans).

checkov lives in its own virtualenv (``make iac-tools`` -> ``.venv-iac``): it pins old
networkx and packaging that would downgrade the project's own environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
EXAMPLE = TERRAFORM / "examples" / "aws"
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def _clean(value: Any) -> Any:
    """python-hcl2 8 output without its markers: keys and strings unquoted, no comments."""
    if isinstance(value, dict):
        return {
            _unquote(k): _clean(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return _clean(hcl2.load(stream))  # type: ignore[no-any-return]


def blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Every ``kind`` block (variable, output, module) of a directory, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in load(path).get(kind, []):
            found.update(block)
    return found


def resources(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Every resource of one type in a directory, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in load(path).get("resource", []):
            found.update(block.get(kind, {}))
    return found


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_terraform_file_parses(path: Path) -> None:
    assert isinstance(load(path), dict)


def test_layout() -> None:
    names = {p.name for p in module_dirs()}
    assert {"network", "ingest", "dashboard", "database", "secrets"} <= names
    for directory in [*module_dirs(), EXAMPLE]:
        assert (directory / "versions.tf").is_file(), directory
    assert (EXAMPLE / "terraform.tfvars.example").is_file()


def test_every_variable_and_output_is_described() -> None:
    for directory in [*module_dirs(), EXAMPLE]:
        for kind in ("variable", "output"):
            for name, body in blocks(directory, kind).items():
                description = body.get("description", "")
                assert len(description) > 10, f"{directory.name}: {kind} {name} has no description"


def test_the_example_wires_every_module_with_what_it_needs() -> None:
    # Every module is called by the example or by a module it calls (modules/ecs-task by the
    # apps), and every call, nested ones too, passes exactly inputs the module declares.
    used: set[Path] = set()
    callers = [EXAMPLE]
    while callers:
        caller = callers.pop()
        for name, call in blocks(caller, "module").items():
            source = (caller / call["source"]).resolve()
            declared = blocks(source, "variable")
            passed = set(call) - META_ARGUMENTS
            where = f"{caller.name}: module {name}"
            assert passed <= set(declared), f"{where}: unknown inputs {passed - set(declared)}"
            required = {v for v, body in declared.items() if "default" not in body}
            assert required <= passed, f"{where}: inputs not passed {required - passed}"
            if source not in used:
                used.add(source)
                callers.append(source)
    assert used == {p.resolve() for p in module_dirs()}, "a module the example does not use"


def test_provider_versions_are_pinned() -> None:
    exact = re.compile(r"^\d+\.\d+\.\d+$")
    for directory in [*module_dirs(), EXAMPLE]:
        (terraform,) = load(directory / "versions.tf")["terraform"]
        assert terraform["required_version"].startswith(">=")
        for providers in terraform["required_providers"]:
            for name, spec in providers.items():
                version = spec["version"]
                if directory == EXAMPLE:
                    assert exact.match(version), f"example: {name} {version} is not exact"
                else:
                    assert "<" in version, f"{directory.name}: {name} {version} has no upper bound"


def _condition_strings(condition: str) -> list[str]:
    match = re.search(r"contains\(\[([^\]]*)\]", condition)
    assert match, condition
    return re.findall(r'"([^"]+)"', match.group(1))


def test_database_mode_is_managed_or_vm() -> None:
    for directory, name in ((MODULES / "database", "mode"), (EXAMPLE, "database_mode")):
        (validation,) = blocks(directory, "variable")[name]["validation"]
        assert sorted(_condition_strings(validation["condition"])) == ["managed", "vm"]
    service = resources(MODULES / "database", "timescale_service")["main"]
    assert "managed" in service["count"]
    instance = resources(MODULES / "database", "aws_instance")["vm"]
    assert instance["associate_public_ip_address"] is False
    (metadata,) = instance["metadata_options"]
    assert metadata["http_tokens"] == "required"  # IMDSv2
    (volume,) = resources(MODULES / "database", "aws_ebs_volume").values()
    assert volume["encrypted"] is True


def test_only_gateways_reach_the_ingest_listener() -> None:
    ingest = MODULES / "ingest"
    rules = resources(ingest, "aws_vpc_security_group_ingress_rule")
    on_lb = {
        n: r for n, r in rules.items() if r["security_group_id"] == "${aws_security_group.lb.id}"
    }
    assert list(on_lb) == ["lb_from_gateways"], "the ingest load balancer admits only gateways"
    rule = on_lb["lb_from_gateways"]
    assert rule["for_each"] == "${toset(var.gateway_cidrs)}"
    assert rule["cidr_ipv4"] == "${each.value}"
    assert rule["from_port"] == rule["to_port"] == "${var.listener_port}"
    # Tasks: gRPC only from the load balancer; the only address-based rule is metrics in the VPC.
    on_task = {
        n: r for n, r in rules.items() if r["security_group_id"] == "${aws_security_group.task.id}"
    }
    assert on_task["task_from_lb"]["referenced_security_group_id"] == "${aws_security_group.lb.id}"
    cidr_rules = [r for r in on_task.values() if "cidr_ipv4" in r]
    assert [r["cidr_ipv4"] for r in cidr_rules] == ["${var.vpc_cidr}"]
    (gateway_cidrs,) = blocks(ingest, "variable")["gateway_cidrs"]["validation"]
    assert "0.0.0.0/0" in gateway_cidrs["condition"], "the whole internet is refused"


def test_ingest_speaks_grpc_and_pins_each_facility_to_one_replica() -> None:
    ingest = MODULES / "ingest"
    groups = resources(ingest, "aws_lb_target_group")
    assert groups
    for group in groups.values():
        assert group["protocol_version"] == "GRPC"
        assert group["protocol"] == "HTTPS"
        (health,) = group["health_check"]
        assert health["path"] == "/grpc.health.v1.Health/Check"
        assert health["matcher"] == "0"
        assert group["for_each"] == "${var.replicas}"  # one target group per replica
    (listener,) = resources(ingest, "aws_lb_listener").values()
    assert listener["protocol"] == "HTTPS"
    (rule,) = resources(ingest, "aws_lb_listener_rule").values()
    (condition,) = rule["condition"]
    assert "host_header" in condition
    (service,) = resources(ingest, "aws_ecs_service").values()
    assert service["for_each"] == "${var.replicas}"
    assert service["desired_count"] == 1  # one FSE per facility
    assert service["deployment_maximum_percent"] == 100  # never two at once
    conditions = [v["condition"] for v in blocks(ingest, "variable")["replicas"]["validation"]]
    assert any("distinct(flatten(values(var.replicas)))" in c for c in conditions)


def test_dashboard_is_https_with_http_redirected() -> None:
    listeners = resources(MODULES / "dashboard", "aws_lb_listener")
    assert listeners["https"]["protocol"] == "HTTPS"
    assert listeners["https"]["certificate_arn"] == "${var.certificate_arn}"
    (action,) = listeners["http"]["default_action"]
    assert action["type"] == "redirect"
    assert action["redirect"][0]["protocol"] == "HTTPS"


def _checkov() -> str:
    candidates = [os.environ.get("LOCOWATCH_CHECKOV"), str(ROOT / ".venv-iac" / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("checkov")
    if found is None:
        pytest.fail("checkov not found: run `make iac-tools` (or set LOCOWATCH_CHECKOV)")
    return found


def test_every_checkov_skip_says_why() -> None:
    skip = re.compile(r"#checkov:skip=(CKV2?_AWS_\d+):(.*)")
    for path in TF_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                match = skip.search(line)
                assert match, f"{path}: malformed skip: {line.strip()}"
                assert len(match.group(2).split()) >= 6, f"{path}: give a real reason: {line}"


@pytest.mark.slow
def test_checkov_finds_nothing() -> None:
    result = subprocess.run(
        [
            _checkov(),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--compact",
            "--quiet",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # offline: no guideline download
    )
    assert result.stdout, result.stderr[-2000:]
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 50, "checkov saw no modules"
    assert not failed, "\n".join(failed)
    assert summary["failed"] == 0


def test_a_facility_file_with_a_camera_password_is_refused_before_upload() -> None:
    """The cluster module's check (RE2; Python's re reads this pattern the same way)."""
    import re

    validations = blocks(MODULES / "cluster", "variable")["facility_files"]["validation"]
    condition = next(v["condition"] for v in validations if "source:" in v["condition"])
    literal = re.search(r'regex\("((?:[^"\\]|\\.)*)"', condition)
    assert literal is not None, condition
    pattern = re.compile(literal.group(1).encode().decode("unicode_escape"))
    example = (TERRAFORM.parent / "examples" / "depot.yaml").read_text(encoding="utf-8")
    assert not pattern.search(example)
    assert not pattern.search("  - id: c\n    source: rtsp://10.0.0.1:554/Streaming/101\n")
    assert pattern.search("  - id: c\n    source: rtsp://admin:hunter2@10.0.0.1:554/s\n")
    assert pattern.search("    source: 'rtsps://viewer:@cam.local/s'\n")
