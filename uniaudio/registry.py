"""Name -> factory registries (tokenizers, metrics), with errors that list what exists."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable:
        def deco(factory):
            self[name] = factory
            return factory
        return deco

    def get(self, name: str, **kwargs) -> T:  # type: ignore[override]
        if name not in self:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}")
        return self[name](**kwargs)
