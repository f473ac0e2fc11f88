"""Read a project's YAML files into validated configuration, then plan it.

A project is a folder with ``hygge.yml`` (found by walking up from the working
directory) or a single YAML file named directly. Flows live inline under
``flows:`` or as ``flows/<flow>/flow.yml`` with ``flows/<flow>/entities/*.yml``.
Every problem found is reported at once, each naming its file and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from hygge_core.config import EntityConfig, EntityDiscovery, FlowConfig, ProjectConfig
from hygge_core.env_vars import MissingVariable, expand
from hygge_core.errors import ConfigError
from hygge_core.home import homes_registry
from hygge_core.plan_checks import plan_problems
from hygge_core.planning import FlowPlanner
from hygge_core.project import DefinedAt, Project
from hygge_core.store import stores_registry
from hygge_core.validation import Where, collect_problems, validate
from hygge_core.yaml_reader import KeyLines, YamlProblem, parse_yaml

PROJECT_FILE_NAMES = ("hygge.yml", "hygge.yaml")


def find_project_file(start: Path | str | None = None) -> Path:
    """The project's YAML file: ``start`` itself if it is a file, else ``hygge.yml`` in it or a parent."""
    origin = Path(start) if start is not None else Path.cwd()
    if origin.is_file():
        return origin.resolve()
    if start is not None and not origin.exists():
        raise ConfigError(f"project path {str(origin)!r} does not exist")
    for folder in [origin.resolve(), *origin.resolve().parents]:
        for name in PROJECT_FILE_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"no hygge.yml in {str(origin.resolve())!r} or any folder above it; "
        "run `hygge init NAME` to create a project, or pass -p/--project PATH"
    )


def read_project_name(config_file: Path, *, environ: Mapping[str, str] | None = None) -> str:
    """The project's ``name:`` (else its folder's name) without validating or planning the project.

    For naming things before the project loads (``hygge dev``'s code location): planning may connect to
    databases, and a broken project must still get a name so the UI can show what is wrong with it.
    """
    raw = _read_yaml(config_file, environ, [])
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name.strip() else config_file.parent.name


def load_project(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    discovered: Mapping[str, Sequence[str]] | None = None,
) -> Project:
    """Read, validate and plan a project. Every problem found is reported at once.

    ``discovered`` maps flows to the names their discovery found in an earlier load of the
    same run (``Project.discovered``), so a step process does not query the catalog again.
    """
    config_file = find_project_file(path)
    root = config_file.parent
    problems: list[str] = []

    raw = _read_yaml(config_file, environ, problems) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_file.name}: (top level): expected a mapping of keys such as name:, flows:")
    raw_flows = raw.pop("flows", None) or {}
    if not isinstance(raw_flows, dict):
        problems.append(f"{config_file.name}: flows: expected a mapping of flow names to flows")
        raw_flows = {}
    flow_sources: dict[str, tuple[Path, Any]] = {name: (config_file, body) for name, body in raw_flows.items()}
    entity_files: dict[str, dict[str, Path]] = {}
    _read_flow_folders(root, config_file, flow_sources, environ, problems, defined_in=entity_files)

    raw.setdefault("name", root.name)
    top = collect_problems(problems, validate, ProjectConfig, raw, file=config_file.name, prefix="")
    flows: dict[str, FlowConfig] = {}
    places: dict[str, Where] = {}
    for flow_name, (file, body) in flow_sources.items():
        where = Where(_display(file, root), f"flows.{flow_name}" if file == config_file else "")
        flow = collect_problems(problems, validate, FlowConfig, body, file=where.file, prefix=where.prefix)
        block_problems = _check_blocks(body, where)
        problems.extend(block_problems)
        if flow is not None and not block_problems:
            flows[flow_name] = flow
            places[flow_name] = where
    if problems or top is None:
        raise ConfigError(list(dict.fromkeys(problems)))

    config = top.model_copy(update={"flows": flows})
    project = Project(name=config.name, root=root, config_file=config_file, config=config)
    for flow_name, flow in flows.items():
        known = (discovered or {}).get(flow_name)
        planner = FlowPlanner(
            project.name,
            root,
            config.connections,
            flow_name,
            flow,
            places[flow_name],
            tuple(known) if known is not None else None,
        )
        if isinstance(flow.entities, EntityDiscovery):
            names = collect_problems(problems, planner.discover)
            if names is None:
                continue
            planner = replace(planner, discovered=names)
            project.discovered[flow_name] = names
        file, body = flow_sources[flow_name]
        default, lines = _definitions(flow_name, file, body, inline=file == config_file, files=entity_files.get(flow_name, {}))
        for plan in collect_problems(problems, planner.plans) or []:
            project.plans.append(replace(plan, defined_at=lines.get(plan.entity, default)))
    if problems:
        raise ConfigError(problems)
    overlaps = plan_problems(project.plans)
    if overlaps:
        raise ConfigError(overlaps)
    return project


def _definitions(
    flow: str, file: Path, body: Any, *, inline: bool, files: Mapping[str, Path]
) -> tuple[DefinedAt, dict[str, DefinedAt]]:
    """Where each listed entity of a flow is written (its list item, or line 1 of its entity file), and where the
    others are (discovered ones, or the flow's one entity): the flow's ``entities:`` key, else the flow itself."""
    prefix = ("flows", flow) if inline else ()
    try:
        lines = KeyLines(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):  # already read and parsed once; nothing to point at if it changed since
        return DefinedAt(file, 1), {}
    default = DefinedAt(file, lines.key(*prefix, "entities") or (lines.key(*prefix) if prefix else None) or 1)
    places: dict[str, DefinedAt] = {}
    listed = body.get("entities") if isinstance(body, dict) else None
    if isinstance(listed, list):
        for item, line in zip(listed, lines.items(*prefix, "entities"), strict=False):  # entity files come after
            name = item.get("name") if isinstance(item, dict) else item
            if isinstance(name, str):
                places[name] = DefinedAt(file, line)
    places.update({name: DefinedAt(path, 1) for name, path in files.items()})
    return default, places


def _check_blocks(body: Any, where: Where) -> list[str]:
    """Validate a flow's home and store blocks on their own, so their typos are reported even when the flow has
    other problems. Missing keys are left to the entity stage: entities may supply them."""
    if not isinstance(body, dict):
        return []
    problems: list[str] = []
    for part, registry in (("home", homes_registry), ("store", stores_registry)):
        raw = body.get(part)
        if not isinstance(raw, dict) or "type" not in raw:
            continue
        try:
            model = registry.get(str(raw["type"]), where=where.at(f"{part}.type")).config_model
            validate(model, raw, file=where.file, prefix=where.key(part))
        except ConfigError as error:
            problems.extend(p for p in error.problems if not p.endswith("required key is missing"))
    return problems


def _read_yaml(file: Path, environ: Mapping[str, str] | None, problems: list[str]) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror or exc}")
        return None
    try:
        data = parse_yaml(text)
    except YamlProblem as problem:
        problems.append(f"{file.name}: {problem}")
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problems.append(f"{file.name}: invalid YAML{at}: {exc.problem or exc}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{file.name}: invalid YAML: {exc}")
        return None
    try:
        return expand(data, environ=environ)
    except MissingVariable as missing:
        problems.append(
            f"{file.name}: {missing.key_path}: environment variable {missing.name} is not set "
            f"(set it, or write ${{{missing.name}:-default}})"
        )
        return None


def _read_flow_folders(
    root: Path,
    config_file: Path,
    flow_sources: dict[str, tuple[Path, Any]],
    environ: Mapping[str, str] | None,
    problems: list[str],
    *,
    defined_in: dict[str, dict[str, Path]],
) -> None:
    """Add each ``flows/<flow>/flow.yml`` to ``flow_sources``, with its entity files; ``defined_in`` records
    which file defines which entity, per flow."""
    flows_dir = root / "flows"
    if not flows_dir.is_dir():
        return
    for flow_dir in sorted(p for p in flows_dir.iterdir() if p.is_dir()):
        flow_file = next((flow_dir / n for n in ("flow.yml", "flow.yaml") if (flow_dir / n).is_file()), None)
        if flow_file is None:
            continue
        if flow_dir.name in flow_sources:
            problems.append(
                f"{_display(flow_file, root)}: flow {flow_dir.name!r} is also defined inline in {config_file.name}; keep one"
            )
            continue
        body = _read_yaml(flow_file, environ, problems)
        if not isinstance(body, dict):
            if body is not None:
                problems.append(f"{_display(flow_file, root)}: expected a mapping with home:, store: and entities:")
            continue
        entity_files = sorted([*flow_dir.glob("entities/*.yml"), *flow_dir.glob("entities/*.yaml")])
        if entity_files:
            entities = list(body.get("entities") or [])
            for entity_file in entity_files:
                entity = _read_yaml(entity_file, environ, problems)
                if entity is None:
                    entity = {}
                if not isinstance(entity, dict):
                    problems.append(f"{_display(entity_file, root)}: expected a mapping (name:, home:, store:, ...)")
                    continue
                entity.setdefault("name", entity_file.stem)
                checked = collect_problems(problems, validate, EntityConfig, entity, file=_display(entity_file, root), prefix="")
                if checked is not None:
                    entities.append(entity)
                    defined_in.setdefault(flow_dir.name, {})[str(entity["name"])] = entity_file
            body["entities"] = entities
        flow_sources[flow_dir.name] = (flow_file, body)


def _display(file: Path, root: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)
