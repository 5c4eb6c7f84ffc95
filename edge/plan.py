"""The set of processes a gateway runs, derived from the facility file alone.

Every edge process computes the same plan, so each finds the others' ports without a
registry. Estimators are shared across flows: two flows naming the same model on the
same engine get one estimator process that stamps each estimation once per flow (the
dev flow that only swaps the position model costs one extra position estimator, not a
second copy of everything). Adding a flow is config only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from locowatch.errors import UsageError
from locowatch.facility.config import EstimatorRef, FacilityConfig, Gateway
from locowatch.models.artefacts import resolve

ServiceKind = Literal["aggregator", "uplink", "capture", "estimator"]
POSITION = "position"


@dataclass(frozen=True)
class EstimatorPlan:
    """One estimator process: a task (``position`` or an attribute name) on one model."""

    task: str
    ref: EstimatorRef
    flows: tuple[str, ...]

    @property
    def name(self) -> str:
        engine = "" if self.ref.engine == "auto" else f".{self.ref.engine}"
        return f"{self.task}.{self.ref.model}{engine}"

    @property
    def is_position(self) -> bool:
        return self.task == POSITION


@dataclass(frozen=True)
class ServicePlan:
    name: str
    kind: ServiceKind
    host: str
    port: int
    metrics_port: int | None
    estimator: EstimatorPlan | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def arguments(self, config_path: str) -> list[str]:
        """``locowatch`` arguments that run this service: the one way every launcher
        (``edge run``'s supervisor, systemd units, compose services) builds its command."""
        name = ["--name", self.name] if self.kind == "estimator" else []
        return ["edge", self.kind, *name, "--config", config_path]


@dataclass(frozen=True)
class GatewayPlan:
    gateway: Gateway
    services: tuple[ServicePlan, ...]
    locate_flow: str
    _by_name: dict[str, ServicePlan] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({s.name: s for s in self.services})

    def service(self, name: str) -> ServicePlan:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise UsageError(f"no edge service {name!r} in this gateway; known: {known}") from None

    @property
    def aggregator(self) -> ServicePlan:
        return self._by_name["aggregator"]

    @property
    def uplink(self) -> ServicePlan:
        return self._by_name["uplink"]

    @property
    def estimators(self) -> list[ServicePlan]:
        return [s for s in self.services if s.kind == "estimator"]


def estimator_plans(config: FacilityConfig) -> list[EstimatorPlan]:
    """Distinct (task, model, engine, batching) of all flows, each with the flows it serves."""
    flows_of: dict[tuple[str, EstimatorRef], list[str]] = {}
    for flow in config.flows:
        for task, ref in ((POSITION, flow.position), *flow.attributes.items()):
            flows_of.setdefault((task, ref), []).append(flow.name)
    plans = [EstimatorPlan(task, ref, tuple(flows)) for (task, ref), flows in flows_of.items()]
    names = [p.name for p in plans]
    for plan in plans:
        if names.count(plan.name) > 1:
            raise UsageError(
                f"estimator {plan.name}: the flows name it with different max_batch, "
                "batch_deadline_ms, cpu_threads or accept; give them the same settings, "
                "or another engine"
            )
    return plans


def check_models(plan: GatewayPlan) -> None:
    """Refuse a plan naming a model that is not in the models folder, before anything starts
    (a missing model would otherwise show as an estimator crash-looping under the supervisor)."""
    for service in plan.estimators:
        assert service.estimator is not None
        resolve(service.estimator.ref.model)


def gateway_plan(config: FacilityConfig) -> GatewayPlan:
    if config.gateway is None:
        raise UsageError("the facility file has no 'gateway' section; an edge gateway needs one")
    services = config.gateway.services
    kinds: list[tuple[str, ServiceKind, EstimatorPlan | None]] = [
        ("aggregator", "aggregator", None),
        ("uplink", "uplink", None),
        ("capture", "capture", None),
    ]
    kinds += [(p.name, "estimator", p) for p in estimator_plans(config)]
    plans = tuple(
        ServicePlan(
            name=name,
            kind=kind,
            host=services.host,
            port=services.base_port + index,
            metrics_port=(
                services.metrics_base_port + index if services.metrics_base_port else None
            ),
            estimator=estimator,
        )
        for index, (name, kind, estimator) in enumerate(kinds)
    )
    return GatewayPlan(config.gateway, plans, config.locate_flow)
