"""Registries of interchangeable backends, picked by name from a recipe. Unknown names fail loudly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from workbench.errors import UnknownBackendError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → backend class. ``@REGISTRY.register("name")`` adds one."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownBackendError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
