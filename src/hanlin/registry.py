"""One registry for every plugin point: things registered by name, in code or through an
entry-point group, and looked up by name with an error that lists what exists.

Built-ins register exactly like third-party packages: through the entry-point group declared
in ``pyproject.toml`` (stores, embedders, providers) or with :meth:`Registry.register` at import
time (web-search providers). Entry points are discovered on the first lookup and each one is
imported only when it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar, overload

from hanlin.errors import NotFoundError, did_you_mean

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named plugins of one kind, readable as a mapping ``name → object``.

    ``kind`` names the plugin kind in errors ("knowledge store"); ``group`` is the entry-point
    group third parties register under; ``hint`` is appended to the unknown-name hint (where
    the name is configured). A name registered in code takes precedence over an entry point of
    the same name, and a later registration replaces an earlier one. Iteration follows
    registration order, with entry points after the names registered in code.
    """

    def __init__(self, kind: str, group: str | None = None, *, hint: str = "") -> None:
        self.kind = kind
        self.group = group
        self.hint = hint
        self._objects: dict[str, T] = {}
        self._entry_points: dict[str, EntryPoint] = {}
        self._loaded: dict[str, T] = {}  # entry points imported so far
        self._discovered = group is None

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...
    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name``; without ``obj``, a decorator that does it."""
        if obj is None:
            return lambda o: self.register(name, o)
        self._objects[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Forget ``name`` (registered in code or by an entry point); no error if unknown."""
        self._discover()
        self._objects.pop(name, None)
        self._entry_points.pop(name, None)
        self._loaded.pop(name, None)

    def refresh(self) -> None:
        """Read the entry-point group again on the next lookup (after installing a plugin
        into the running process; tests use it)."""
        self._entry_points.clear()
        self._loaded.clear()
        self._discovered = self.group is None

    def lookup(self, name: str) -> T:
        """The object registered as ``name``.

        Raises :class:`NotFoundError` naming the known names and the closest one."""
        try:
            return self[name]
        except KeyError:
            pass
        known = self.names()
        guess = did_you_mean(name, known)
        listed = ", ".join(sorted(known)) or "none"
        extra = f" ({self.hint})" if self.hint else ""
        raise NotFoundError(
            f"unknown {self.kind} '{name}'", hint=f"{guess}use one of: {listed}{extra}"
        ) from None

    def names(self) -> list[str]:
        """Every registered name, without importing any entry point."""
        return list(self)

    def origin(self, name: str) -> str:
        """Where ``name`` comes from, as ``module:attribute`` (without importing it)."""
        self._discover()
        if name in self._objects:
            obj = self._objects[name]
            return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', name)}"
        if name in self._entry_points:
            return self._entry_points[name].value
        raise KeyError(name)

    # --- Mapping ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        self._discover()
        if name in self._objects:
            return self._objects[name]
        if name not in self._loaded:
            ep = self._entry_points.get(name)
            if ep is None:
                raise KeyError(name)
            self._loaded[name] = ep.load()  # imported once, on first use
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter([*self._objects, *(n for n in self._entry_points if n not in self._objects)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._objects or name in self._entry_points

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for ep in entry_points(group=self.group or ""):
            self._entry_points.setdefault(ep.name, ep)
