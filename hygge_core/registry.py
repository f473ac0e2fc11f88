"""Home and store types register themselves by subclassing.

A new type is one class in one file::

    class CsvHome(Home, type_name="csv", config=CsvHomeConfig): ...

``homes_registry`` and ``stores_registry`` map ``type:`` values to classes. The
registry only records classes; importing ``hygge_core.homes`` and
``hygge_core.stores`` is what brings the built-in types in.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar, Generic, TypeVar

from hygge_core.context import EntityContext
from hygge_core.errors import ConfigError
from hygge_core.suggest import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → class table with errors that list the known names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def add(self, name: str, cls: type[T]) -> None:
        existing = self._classes.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"{self.kind} type {name!r} is registered twice: {existing!r} and {cls!r}")
        self._classes[name] = cls

    def get(self, name: str, *, where: str) -> type[T]:
        if name in self._classes:
            return self._classes[name]
        known = ", ".join(sorted(self._classes)) or "(none)"
        raise ConfigError(f"{where}: unknown {self.kind} type {name!r}{did_you_mean(name, self._classes)}; known types: {known}")

    def names(self) -> list[str]:
        return sorted(self._classes)

    def register_subclass(self, cls: Any, *, type_name: str | None, config: type | None) -> None:
        """The ``__init_subclass__`` body of ``Home`` and ``Store``: classes given a ``type_name`` are registered.

        Abstract intermediate classes (a shared SQL base, say) pass no ``type_name`` and stay unregistered.
        """
        if type_name is None:
            return
        if config is None:
            raise TypeError(f"{cls.__name__}: a registered {self.kind} needs config=<its config model>")
        cls.type_name = type_name
        cls.config_model = config
        self.add(type_name, cls)


class RegisteredType(ABC):
    """The base of ``Home`` and ``Store``: one instance serves one entity, and subclasses register themselves.

    A subclass declared with ``type_name=`` and ``config=`` lands in the ``registry`` its
    base names; abstract intermediate classes (a shared SQL base) pass neither.
    """

    registry: ClassVar[Registry[Any]]
    type_name: ClassVar[str]
    config_model: ClassVar[type[Any]]

    def __init_subclass__(cls, *, type_name: str | None = None, config: type | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.registry.register_subclass(cls, type_name=type_name, config=config)

    def __init__(self, config: Any, context: EntityContext) -> None:
        self.config = config
        self.context = context
