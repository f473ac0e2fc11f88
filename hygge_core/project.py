"""Load a project from YAML and expand its flows into entity plans.

A project is a folder with ``hygge.yml`` (found by walking up from the working
directory) or a single YAML file named directly. Flows live inline under
``flows:`` or as ``flows/<flow>/flow.yml`` with ``flows/<flow>/entities/*.yml``.
Relative paths resolve against the project root, never the working directory.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hygge_core import homes as _builtin_homes  # noqa: F401  (registers built-in homes)
from hygge_core import stores as _builtin_stores  # noqa: F401  (registers built-in stores)
from hygge_core.config import ConnectionConfig, EntityConfig, EntityDiscovery, FlowConfig, ProjectConfig, WatermarkConfig
from hygge_core.env_vars import MissingVariable, expand
from hygge_core.errors import ConfigError
from hygge_core.home import DiscoveryContext, Home, HomeConfig, homes_registry
from hygge_core.names import check_entity_name, safe_segment
from hygge_core.store import Store, StoreConfig, stores_registry
from hygge_core.templates import substitute_entity
from hygge_core.validation import validate

PROJECT_FILE_NAMES = ("hygge.yml", "hygge.yaml")
T = TypeVar("T")


@dataclass(frozen=True)
class EntityPlan:
    """Everything needed to run one entity, fully resolved: no templates, no relative paths."""

    project_name: str
    project_root: Path
    flow: str
    entity: str
    home: HomeConfig
    store: StoreConfig
    run_type: str
    watermark: WatermarkConfig | None
    flow_config: FlowConfig
    connection_name: str | None = None
    connection: ConnectionConfig | None = None

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.entity}"

    def create_home(self) -> Home:
        return homes_registry.get(self.home.type, where=f"flows.{self.flow}.home")(self.home, self)

    def create_store(self) -> Store:
        return stores_registry.get(self.store.type, where=f"flows.{self.flow}.store")(self.store, self)


@dataclass
class Project:
    name: str
    root: Path
    config_file: Path
    config: ProjectConfig
    plans: list[EntityPlan] = field(default_factory=list)

    @property
    def flows(self) -> list[str]:
        return list(self.config.flows)

    def entities(self, flow: str | None = None) -> list[EntityPlan]:
        return [plan for plan in self.plans if flow is None or plan.flow == flow]

    def entity(self, key: str) -> EntityPlan:
        for plan in self.plans:
            if plan.key == key:
                return plan
        raise ConfigError(f"no entity {key!r} in project {self.name!r}{_closest(key, [p.key for p in self.plans])}")

    def select(self, *, flows: Sequence[str] = (), entities: Sequence[str] = ()) -> list[EntityPlan]:
        """Plans matching ``--flow`` and ``--entity`` (``flow/entity`` or ``flow.entity``); unknown names are errors."""
        problems = []
        for flow in flows:
            if flow not in self.config.flows:
                problems.append(f"no flow {flow!r}{_closest(flow, self.flows)}; flows: {', '.join(self.flows)}")
        wanted_keys = {_normalise_entity_key(name, self.flows) for name in entities}
        keys = {plan.key for plan in self.plans}
        for key in sorted(wanted_keys - keys):
            problems.append(f"no entity {key!r}{_closest(key, sorted(keys))}")
        if problems:
            raise ConfigError(problems)
        chosen = []
        for plan in self.plans:
            in_flow = not flows or plan.flow in flows
            in_entities = not entities or plan.key in wanted_keys
            if flows and entities:
                if plan.flow in flows or plan.key in wanted_keys:
                    chosen.append(plan)
            elif in_flow and in_entities:
                chosen.append(plan)
        return chosen


@dataclass(frozen=True)
class Where:
    """A place in the configuration: a file and a key path inside it, for error messages."""

    file: str
    prefix: str

    def key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def at(self, key: str) -> str:
        return f"{self.file}: {self.key(key)}"


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


def load_project(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Project:
    """Read, validate and plan a project. Every problem found is reported at once."""
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
    _read_flow_folders(root, config_file, flow_sources, environ, problems)

    raw.setdefault("name", root.name)
    top = _collect(problems, validate, ProjectConfig, raw, file=config_file.name, prefix="")
    flows: dict[str, FlowConfig] = {}
    for flow_name, (file, body) in flow_sources.items():
        where = Where(_display(file, root), f"flows.{flow_name}" if file == config_file else "")
        flow = _collect(problems, validate, FlowConfig, body, file=where.file, prefix=where.prefix)
        block_problems = _check_blocks(body, where)
        problems.extend(block_problems)
        if flow is not None and not block_problems:
            flows[flow_name] = flow
    if problems or top is None:
        raise ConfigError(list(dict.fromkeys(problems)))

    config = top.model_copy(update={"flows": flows})
    project = Project(name=config.name, root=root, config_file=config_file, config=config)
    for flow_name, flow in flows.items():
        file, _ = flow_sources[flow_name]
        where = Where(_display(file, root), f"flows.{flow_name}" if file == config_file else "")
        project.plans.extend(_collect(problems, _plan_flow, project, flow_name, flow, where) or [])
    if problems:
        raise ConfigError(problems)
    return project


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


def _plan_flow(project: Project, flow_name: str, flow: FlowConfig, where: Where) -> list[EntityPlan]:
    home_cls = homes_registry.get(str(flow.home["type"]), where=where.at("home.type"))
    store_cls = stores_registry.get(str(flow.store["type"]), where=where.at("store.type"))
    connection_name, connection = _connection_for(project, flow, where)
    problems: list[str] = []
    plans: list[EntityPlan] = []

    entities: list[tuple[EntityConfig, bool]]
    if flow.entities is None:
        entities = [(EntityConfig(name=flow_name), False)]
    elif isinstance(flow.entities, EntityDiscovery):
        names = _discover(home_cls, flow, flow.entities, project, connection, where)
        entities = [(EntityConfig(name=name), True) for name in names]
    else:
        entities = []
        for index, item in enumerate(flow.entities):
            entity = EntityConfig(name=item) if isinstance(item, str) else item
            _collect(problems, check_entity_name, entity.name, where=where.at(f"entities[{index}]"))
            entities.append((entity, True))

    seen: set[str] = set()
    for entity, listed in entities:
        if entity.name in seen:
            problems.append(f"{where.at('entities')}: entity {entity.name!r} is listed twice")
            continue
        seen.add(entity.name)
        plan = _collect(problems, _plan_entity, project, flow_name, flow, entity, listed, home_cls, store_cls, connection_name, connection, where)
        if plan is not None:
            plans.append(plan)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    return plans


def _plan_entity(
    project: Project,
    flow_name: str,
    flow: FlowConfig,
    entity: EntityConfig,
    listed: bool,
    home_cls: type[Home],
    store_cls: type[Store],
    connection_name: str | None,
    connection: ConnectionConfig | None,
    where: Where,
) -> EntityPlan:
    problems: list[str] = []
    for part, override, model in (("home", entity.home, home_cls.config_model), ("store", entity.store, store_cls.config_model)):
        for key in override:
            if key not in model.model_fields:
                close = difflib.get_close_matches(str(key), list(model.model_fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{where.at(f'entities[{entity.name}].{part}.{key}')}: unknown key {key!r}{hint}")
    if problems:
        raise ConfigError(problems)
    label = where.file
    home_raw = _deep_merge(home_cls.config_model.for_entity(dict(flow.home), entity.name, listed=listed), substitute_entity(entity.home, entity.name))
    store_raw = _deep_merge(store_cls.config_model.for_entity(dict(flow.store), entity.name, listed=listed), substitute_entity(entity.store, entity.name))
    home = _collect(problems, validate, home_cls.config_model, home_raw, file=label, prefix=where.key("home"))
    store = _collect(problems, validate, store_cls.config_model, store_raw, file=label, prefix=where.key("store"))
    if problems or home is None or store is None:
        raise ConfigError(problems)
    return EntityPlan(
        project_name=project.name,
        project_root=project.root,
        flow=flow_name,
        entity=entity.name,
        home=home.resolve_paths(project.root),
        store=store.resolve_paths(project.root),
        run_type=entity.run_type or flow.run_type,
        watermark=entity.watermark or flow.watermark,
        flow_config=flow,
        connection_name=connection_name,
        connection=connection,
    )


def _discover(
    home_cls: type[Home],
    flow: FlowConfig,
    discovery: EntityDiscovery,
    project: Project,
    connection: ConnectionConfig | None,
    where: Where,
) -> list[str]:
    home_config = validate(home_cls.config_model, dict(flow.home), file=where.file, prefix=where.key("home")).resolve_paths(project.root)
    context = DiscoveryContext(where=where.at("entities"), project_root=project.root, connection=connection)
    names = home_cls.discover(home_config, context)
    chosen = [
        name
        for name in names
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in discovery.include)
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in discovery.exclude)
    ]
    return sorted({safe_segment(name) if name != safe_segment(name) else name for name in chosen})


def _connection_for(project: Project, flow: FlowConfig, where: Where) -> tuple[str | None, ConnectionConfig | None]:
    name = flow.home.get("connection")
    if name is None:
        return None, None
    if name not in project.config.connections:
        known = ", ".join(sorted(project.config.connections)) or "none are defined"
        raise ConfigError(f"{where.at('home.connection')}: {name!r} is not under connections:{_closest(str(name), list(project.config.connections))} (known: {known})")
    return name, project.config.connections[name]


def _read_yaml(file: Path, environ: Mapping[str, str] | None, problems: list[str]) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror or exc}")
        return None
    try:
        data = yaml.safe_load(text)
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
    root: Path, config_file: Path, flow_sources: dict[str, tuple[Path, Any]], environ: Mapping[str, str] | None, problems: list[str]
) -> None:
    flows_dir = root / "flows"
    if not flows_dir.is_dir():
        return
    for flow_dir in sorted(p for p in flows_dir.iterdir() if p.is_dir()):
        flow_file = next((flow_dir / n for n in ("flow.yml", "flow.yaml") if (flow_dir / n).is_file()), None)
        if flow_file is None:
            continue
        if flow_dir.name in flow_sources:
            problems.append(f"{_display(flow_file, root)}: flow {flow_dir.name!r} is also defined inline in {config_file.name}; keep one")
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
                checked = _collect(problems, validate, EntityConfig, entity, file=_display(entity_file, root), prefix="")
                if checked is not None:
                    entities.append(entity)
            body["entities"] = entities
        flow_sources[flow_dir.name] = (flow_file, body)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _collect(problems: list[str], action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``action``; on ``ConfigError`` add its problems to ``problems`` and return ``None``.

    This is how loading reports every problem at once instead of stopping at the first.
    """
    try:
        return action(*args, **kwargs)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _display(file: Path, root: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)


def _closest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _normalise_entity_key(name: str, flows: Sequence[str]) -> str:
    if "/" in name:
        return name
    for flow in sorted(flows, key=len, reverse=True):
        if name.startswith(flow + "."):
            return f"{flow}/{name[len(flow) + 1:]}"
    return name
