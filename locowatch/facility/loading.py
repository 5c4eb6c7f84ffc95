"""Load a facility YAML file into a validated ``FacilityConfig``.

Errors name the file, line, key, offending value and why::

    facility.yaml:41: cameras[2].intrinsics.fx = -900.0: Input should be greater than 0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from locowatch.errors import UsageError
from locowatch.facility.config import FacilityConfig, RuleError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file."""

    file: Path
    line: int | None
    key: str
    value: Any
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        key = self.key or "(top level)"
        value = "" if self.value is _MISSING else f" = {_short(self.value)}"
        return f"{where}: {key}{value}: {self.message}"


class FacilityConfigError(UsageError, ValueError):
    """The facility file could not be read or is invalid; ``problems`` lists why."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_MISSING = object()


def load_facility(path: str | Path) -> FacilityConfig:
    """Read and validate a facility file. Relative paths inside resolve against its folder.

    Raises:
        FacilityConfigError: with one ``ConfigProblem`` per error found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FacilityConfigError(
            [ConfigProblem(path, None, "", _MISSING, f"cannot read file: {exc.strerror}")]
        ) from exc
    return parse_facility(text, path)


def load_facility_without_secrets(path: str | Path) -> FacilityConfig:
    """``load_facility`` for the cloud (ingest, dashboard): a file that carries a camera
    password is refused, so that no copy of it outside the gateway holds one."""
    config = load_facility(path)
    carrying = [camera.id for camera in config.cameras if camera.inline_password]
    if carrying:
        raise UsageError(
            f"{path}: camera passwords in the source URLs of {', '.join(carrying)}; the "
            "cloud takes facility files without secrets. On the gateway, give each camera "
            "'credentials: {username: ..., password_env: VAR}' (or password_file) instead, "
            "and copy that file here; 'locowatch config strip-secrets' writes such a copy."
        )
    return config


def strip_secrets(config: FacilityConfig) -> FacilityConfig:
    """The config with every password left out of the camera URLs (references kept)."""
    from locowatch.logs import redact

    cameras = [
        c.model_copy(update={"source": redact(c.source, keep_user=False)}) for c in config.cameras
    ]
    return config.model_copy(update={"cameras": cameras})


def parse_facility(text: str, path: Path) -> FacilityConfig:
    """Validate facility YAML given as text; ``path`` names it in errors and anchors paths."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise FacilityConfigError([ConfigProblem(path, line, "", _MISSING, problem)]) from exc
    if not isinstance(data, dict):
        raise FacilityConfigError(
            [ConfigProblem(path, 1, "", _MISSING, "expected a mapping at the top of the file")]
        )
    try:
        return FacilityConfig.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise FacilityConfigError(
            [_problem(path, root, data, error) for error in exc.errors()]
        ) from exc


def _problem(path: Path, root: yaml.Node | None, data: Any, error: Any) -> ConfigProblem:
    loc: Loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, RuleError):
        loc = cause.loc
    message = str(cause) if cause is not None else error["msg"]
    value = _lookup(data, loc)
    return ConfigProblem(path, _line_of(root, loc), _dotted(loc), value, message)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lookup(data: Any, loc: Loc) -> Any:
    """The value at ``loc`` in the parsed YAML, or _MISSING when the key is absent."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest node of ``loc`` present in the composed YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                # Point at the key itself: that is the line the user looks for.
                return value if isinstance(value, yaml.CollectionNode) else key
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dump_facility(config: FacilityConfig, header: str) -> str:
    """A facility file's text for ``config`` (what ``load_facility`` reads back)."""
    data = config.model_dump(mode="json", exclude_none=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return f"# {header}\n{text}"
