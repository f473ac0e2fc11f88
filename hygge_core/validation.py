"""Turn pydantic's validation errors into messages a user can act on.

Each problem names the file, the key path and, for a typo, the closest valid key:
``hygge.yml: flows.sales.store.compresion: unknown key (did you mean 'compression'?)``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from hygge_core.errors import ConfigError
from hygge_core.suggest import did_you_mean

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def validate(model: type[M], data: Any, *, file: Path | str, prefix: str) -> M:
    """Validate ``data`` as ``model``; raise ``ConfigError`` with one line per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, model, file=file, prefix=prefix)) from None


def describe_errors(exc: ValidationError, model: type[BaseModel], *, file: Path | str, prefix: str) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        key_path = _join_path(prefix, loc)
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}{_suggestion(model, loc)}"
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = _clean_message(error["msg"])
            echo = "input" in error and not isinstance(error["input"], (dict, list)) and error["type"] != "value_error"
            if echo and not _is_secret(model, loc):  # a mistyped password must not land in a log
                message += f" (got {error['input']!r})"
        problems.append(f"{file}: {key_path or '(top level)'}: {message}")
    return _dedupe(problems)


def _join_path(prefix: str, loc: list[Any]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text


def _suggestion(model: type[BaseModel], loc: list[Any]) -> str:
    fields = _fields_at(model, loc[:-1])
    if not fields:
        return ""
    return did_you_mean(str(loc[-1]), fields) or f"; valid keys: {', '.join(sorted(fields))}"


def _is_secret(model: type[BaseModel], loc: list[Any]) -> bool:
    """Whether the value at ``loc`` is a secret field (``SecretStr``), whatever type the user wrote."""
    return any(annotation is SecretStr for candidate in _annotations_at(model, loc) for annotation in _expand(candidate))


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The field names of the model found by following ``loc`` from ``model``."""
    names: list[str] = []
    for candidate in _annotations_at(model, loc):
        for annotation in _expand(candidate):
            if _is_model(annotation):
                names.extend(annotation.model_fields)
    return list(dict.fromkeys(names))


def _annotations_at(model: type[BaseModel], loc: list[Any]) -> list[Any]:
    """The annotations reached by following ``loc`` from ``model`` through fields, dicts and lists."""
    candidates: list[Any] = [model]
    for part in loc:
        next_candidates: list[Any] = []
        for candidate in candidates:
            for annotation in _expand(candidate):
                if _is_model(annotation) and isinstance(part, str) and part in annotation.model_fields:
                    next_candidates.append(annotation.model_fields[part].annotation)
                elif typing.get_origin(annotation) in (dict, list) and typing.get_args(annotation):
                    next_candidates.append(typing.get_args(annotation)[-1])
        candidates = next_candidates
    return candidates


def _expand(annotation: Any) -> list[Any]:
    """Flatten unions and ``Annotated`` wrappers into the types inside."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _expand(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [inner for arg in typing.get_args(annotation) for inner in _expand(arg)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


_UNION_TAG = re.compile(r"^(str|int|float|bool|none|.*\[.*\]|[A-Z]\w*(Config|Discovery|Model)|function-\w+\[.*)$")


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the tried union member in the location (``str``, ``EntityConfig``, ``list[...]``)."""
    return isinstance(part, str) and bool(_UNION_TAG.match(part))


def _clean_message(message: str) -> str:
    return message.removeprefix("Value error, ")


def _dedupe(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))


@dataclass(frozen=True)
class Where:
    """A place in the configuration: a file and a key path inside it, for error messages."""

    file: str
    prefix: str

    def key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def at(self, key: str) -> str:
        return f"{self.file}: {self.key(key)}"


def collect_problems(problems: list[str], action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``action``; on ``ConfigError`` add its problems to ``problems`` and return ``None``.

    This is how loading reports every problem at once instead of stopping at the first.
    """
    try:
        return action(*args, **kwargs)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
