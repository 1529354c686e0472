"""Name -> object registries filled by decorators, and the keyword-argument check builders share.

One small class serves backbones, models and datasets (``models/registry.py``,
``data/registry.py``): the object registers itself where it is defined
(``@register_backbone("resnet18", depth=18)``), so adding one touches one file.  A registry imports
its built-in modules on first lookup, which keeps ``import pixelwise`` cheap, and then the modules
of installed plugins (entry points in the group ``pixelwise_plugins``), so a separately installed
package can add backbones, models, datasets and commands.  This module depends only on
:mod:`pixelwise.errors`, so every package may use it.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from .errors import PixelwiseError, unknown_name

T = TypeVar("T")

#: entry-point group of installed plugins; each entry names a module whose import registers things
PLUGIN_GROUP = "pixelwise_plugins"
_plugins_loaded = False


def load_plugins() -> None:
    """Import every installed plugin module (entry points in :data:`PLUGIN_GROUP`), once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken plugin must not take the built-in entries down with it
            warnings.warn(f"pixelwise plugin '{ep.name}' ({ep.value}) failed to load: {e}", stacklevel=3)


class Registry(Generic[T]):
    """Names -> registered objects of one ``kind`` ("model", "backbone", "dataset").

    ``builtins``: modules whose import registers the built-in entries (imported on first lookup).
    """

    def __init__(self, kind: str, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = False
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        """Add ``obj`` under ``name``; a second registration of a name is a programming error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._entries[name] = obj
        return obj

    def decorator(self, name: str, **bound: Any) -> Callable[[T], T]:
        """``@decorator(name, **bound)``: register the decorated object (with ``bound`` keyword
        arguments applied, as ``functools.partial``) and return it unchanged, so several
        registrations of one class can stack (``resnet18``, ``resnet50``, ...)."""

        def add(obj: T) -> T:
            self.register(name, functools.partial(obj, **bound) if bound else obj)  # type: ignore[arg-type]
            return obj

        return add

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the imported modules call register() on this registry
            for module in self._builtins:
                importlib.import_module(module)
        load_plugins()  # after the built-ins, so a plugin's name clash is reported on the plugin

    def get(self, name: str) -> T:
        """The object registered under ``name``; an unknown name is a one-line error with suggestions."""
        self._load()
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries


def named_kwargs(fn: Callable[..., Any]) -> set[str]:
    """The keyword arguments ``fn`` names in its signature (``**kwargs`` aside).

    Arguments already bound by ``functools.partial`` are fixed by the registration, not options.
    """
    fixed = set(fn.keywords) if isinstance(fn, functools.partial) else set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds} - fixed


def accepted_kwargs(fn: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``fn`` accepts, or ``None`` when it takes ``**kwargs`` (anything goes)."""
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
        return None
    return named_kwargs(fn)


def check_kwargs(what: str, given: Mapping[str, Any] | Iterable[str], valid: Iterable[str]) -> None:
    """Raise a one-line :class:`PixelwiseError` if ``given`` holds a keyword not in ``valid``.

    ``what`` names the receiver, e.g. ``"model 'fcn8s_resnet50'"``.  The message suggests the
    closest valid name for a typo and lists the valid ones.
    """
    valid = sorted(set(valid))
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    names = ", ".join(f"'{k}'" for k in unknown)
    raise PixelwiseError(f"{what} got unknown option {names}{hint}; valid options: {', '.join(valid)}")
