"""Explicit lifetime, shared: ``with obj:`` closes ``obj`` (no ``__del__`` doing real work)."""

from __future__ import annotations

from typing import TypeVar

_C = TypeVar("_C", bound="Closeable")


class Closeable:
    """Mixin for objects with an idempotent :meth:`close`: makes them context managers."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
