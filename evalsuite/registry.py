"""One registry type for everything evalsuite looks up by name: tasks, suites, feature extractors, model spec
schemes, weights, scoring backends and timing backends.

A `Registry` holds name -> entry. Built-in entries register themselves when their module is imported (the
registry imports `builtin_modules` on first lookup, so importing evalsuite stays cheap); third-party packages add
theirs through an entry-point group (each entry point names a module that registers on import, or an object that
is registered under the entry point's name).

>>> from evalsuite.registry import Registry
>>> colours = Registry("colour", fix="see the colour list")
>>> _ = colours.register("red", 0xFF0000)
>>> colours.get("red") == 0xFF0000, colours.names()
(True, ['red'])
>>> colours.get("blue")
Traceback (most recent call last):
...
evalsuite.errors.UnknownNameError: unknown colour 'blue'
  fix: known colours: red (see the colour list)

It also reads and writes like a dict (what `dict(registry)` and pytest's `monkeypatch.setitem` use): `registry[name]`
is `get(name)`, `get(name, default)` does not raise, assignment replaces, `del` removes.

>>> colours["green"] = 0x00FF00
>>> colours["green"] == 0x00FF00, colours.get("blue", None), sorted(dict(colours))
(True, None, ['green', 'red'])
>>> del colours["green"]
>>> "green" in colours, colours.names()
(False, ['red'])
"""

from __future__ import annotations

import importlib
import inspect
import threading
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from evalsuite.errors import UnknownNameError

T = TypeVar("T")
_MISSING = object()


class Registry(Generic[T]):
    """Name -> entry, filled by built-in modules and plugins' entry points on first lookup.

    `kind`: what an entry is, in words ("task", "extractor"), for errors. `builtin_modules`: modules that register
    the built-in entries when imported. `group`: the entry-point group plugins use (e.g. `evalsuite.tasks`). `fix`:
    appended to the unknown-name error (e.g. the command that lists the names).
    """

    def __init__(self, kind: str, *, builtin_modules: Iterable[str] = (), group: str | None = None,
                 fix: str | None = None, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.builtin_modules = tuple(builtin_modules)
        self.group = group
        self.fix = fix
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._in_load = False
        self._loading = threading.RLock()

    # ------------------------------------------------------------------ filling
    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add `entry` under `name`; a second, different entry under one name is an error unless `replace`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, not {name!r}")
        old = self._entries.get(name)
        if old is not None and old is not entry and not replace and not _same_definition(old, entry):
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name_of: Callable[[T], str]) -> Callable[[T], T]:
        """A decorator registering what it decorates under `name_of(it)` (e.g. a task class under `cls.name`)."""
        def register(entry: T) -> T:
            return self.register(name_of(entry), entry)

        return register

    def load(self) -> None:
        """Import the built-in modules and the plugins of the entry-point group (once)."""
        if self._loaded:
            return
        with self._loading:  # other threads wait for the load; the loading thread re-enters the (reentrant) lock
            if self._loaded or self._in_load:  # a module that looks names up while registering does not recurse
                return
            self._in_load = True
            try:
                for module in self.builtin_modules:
                    importlib.import_module(module)
                if self.group:
                    for ep in entry_points(group=self.group):
                        if ep.attr:  # `name = pkg.module:object`: register the object under the entry point's name
                            self.register(ep.name, ep.load())
                        else:  # `name = pkg.module`: the module registers its entries on import
                            importlib.import_module(ep.value)
                self._loaded = True  # a failed import is retried (and raises again) on the next lookup
            finally:
                self._in_load = False

    # ------------------------------------------------------------------ lookup
    def get(self, name: str, default: object = _MISSING) -> T:
        """The entry named `name`; an unknown name is an UnknownNameError listing the known ones (or `default`,
        when one is given)."""
        self.load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            if default is not _MISSING:
                return default  # type: ignore[return-value]
            raise self.unknown(name) from None

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a name that is not registered: what was asked, and the known names (plus `fix`)."""
        known = ", ".join(sorted(self._entries)) or "none"
        fix = f"known {self.plural}: {known}" + (f" ({self.fix})" if self.fix else "")
        return UnknownNameError(f"unknown {self.kind} '{name}'", fix)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    # ------------------------------------------------------------------ dict-like access
    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, entry: T) -> None:
        """Register `entry` under `name`, replacing any entry already there (tests patch entries this way)."""
        self.load()  # the built-in entry, loaded later, must not overwrite the one set now
        self.register(name, entry, replace=True)

    def __delitem__(self, name: str) -> None:
        """Remove an entry; KeyError when there is none (as a dict)."""
        del self._entries[name]

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._entries[k]) for k in self.names()]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load()
        return sorted(self._entries)

    def values(self) -> list[T]:
        """Every entry, in name order."""
        return [self._entries[k] for k in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def _same_definition(old: object, new: object) -> bool:
    """A class or function defined again by re-running its module (importlib.reload, a notebook cell) replaces
    itself; two different definitions under one name are still an error."""
    if not (inspect.isclass(old) or inspect.isfunction(old)):
        try:
            return type(old) is type(new) and bool(old == new)  # e.g. an equal frozen dataclass registered again
        except Exception:  # noqa: BLE001 -- an entry whose == fails is simply not the same definition
            return False
    return (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == \
        (getattr(new, "__module__", None), getattr(new, "__qualname__", None))
