"""Loading plugins from the ``bench`` entry-point group.

Built-in plugins are loaded exactly like third-party ones. Each entry point is
loaded on its own: one that fails to import (or misspells a hook) is reported
with its name, distribution, version and error, and the others still load.

Environment:
  BENCH_STRICT_PLUGINS=1       any plugin failure is an error instead of a report
  BENCH_PLUGINS=a,b            load only these entry points
  BENCH_DISABLE_PLUGINS=c,d    skip these entry points
"""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness.api import hookspecs
from harness.api.components import FAMILIES, Component, ComponentError, Registry, declaration
from harness.api.executor import Local  # the default executor is the core's, not a plugin's

ENTRY_POINT_GROUP = "bench"

#: hook name -> component family it registers
HOOK_FAMILIES = {
    "register_models": "model",
    "register_algorithms": "algorithm",
    "register_metrics": "metric",
    "register_datasets": "dataset",
    "register_run_kinds": "run_kind",
    "register_executors": "executor",
    "register_trackers": "tracker",
}
assert set(HOOK_FAMILIES.values()) == set(FAMILIES)


class PluginError(RuntimeError):
    """A plugin failed to load while loading is strict."""


@dataclass
class PluginInfo:
    name: str
    distribution: str = ""
    version: str = ""
    value: str = ""
    status: str = "loaded"  # loaded | failed | disabled
    error: str = ""
    components: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.value,
            "status": self.status,
            "error": self.error,
            "components": self.components,
        }


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var, "").strip()
    return {p.strip() for p in raw.split(",") if p.strip()} if raw else None


def _strict() -> bool:
    return os.environ.get("BENCH_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


class PluginManager:
    """Owns the pluggy manager, the plugin reports and the component registry."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        self.registry.add(Component(family="executor", name="local", factory=Local, plugin="harness",
                                    **declaration(Local)))

    # -- loading -----------------------------------------------------------
    def load_entry_points(self, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
        eps = list(entry_points if entry_points is not None else md.entry_points(group=ENTRY_POINT_GROUP))
        only, disabled = _env_list("BENCH_PLUGINS"), _env_list("BENCH_DISABLE_PLUGINS")
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
                value=ep.value,
            )
            if ep.name in self.plugins:
                self._fail(info, f"entry point name {ep.name!r} is used by two distributions "
                                 f"({self.plugins[ep.name].distribution} and {info.distribution})")
                continue
            self.plugins[ep.name] = info
            if (only is not None and ep.name not in only) or (disabled and ep.name in disabled):
                info.status = "disabled"
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import failure is the plugin's, not ours
                self._fail(info, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                continue
            self.register_plugin(module, ep.name, info=info)

    def register_plugin(self, plugin: Any, name: str, *, info: PluginInfo | None = None) -> PluginInfo:
        """Register one plugin object (a module, or any object with hookimpls)."""
        info = info or self.plugins.setdefault(name, PluginInfo(name=name, value=repr(plugin)))
        self.plugins[name] = info
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()  # a misspelled hook name fails here, loudly
        except pluggy.PluginValidationError as exc:
            self._unregister(name)
            self._fail(info, f"invalid hook implementation: {exc}. Hooks are: "
                             f"{', '.join(sorted(HOOK_FAMILIES))}")
            return info
        except ValueError as exc:
            self._fail(info, str(exc))
            return info
        try:
            components = self._collect(name)
        except Exception as exc:
            self._unregister(name)
            self._fail(info, f"{type(exc).__name__} while registering components: {exc}",
                       traceback.format_exc())
            return info
        for comp in components:
            self.registry.add(comp)  # a name clash is an error for the whole load
            info.components.append(f"{comp.family}:{comp.name}")
        return info

    def _collect(self, plugin_name: str) -> list[Component]:
        found: list[Component] = []
        for hook_name, family in HOOK_FAMILIES.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue

                def register(name, factory, *, params=None, doc=None, slots=None, example=None, _family=family):
                    if not isinstance(name, str) or not name:
                        raise ComponentError(f"component names are non-empty strings, got {name!r}")
                    if not callable(factory):
                        raise ComponentError(f"{_family} {name!r}: factory {factory!r} is not callable")
                    # the keywords given win; the rest is the factory's own declaration (its class attributes)
                    try:
                        declared = declaration(factory, params=params, doc=doc, slots=slots, example=example)
                    except ComponentError as exc:
                        raise ComponentError(f"{_family} {name!r}: {exc}") from None
                    if declared["slots"] and _family != "run_kind":
                        raise ComponentError(f"{_family} {name!r}: only run kinds declare slots")
                    found.append(Component(family=_family, name=name, factory=factory, plugin=plugin_name,
                                           **declared))

                impl.function(register=register)
        return found

    def _unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)

    def _fail(self, info: PluginInfo, error: str, tb: str = "") -> None:
        info.status, info.error = "failed", error
        self.plugins[info.name] = info
        if _strict():
            raise PluginError(
                f"plugin {info.name!r} ({info.distribution or 'no distribution'} "
                f"{info.version}) failed to load: {error}\n{tb}".rstrip())

    # -- reporting ---------------------------------------------------------
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "failed"]

    def versions(self) -> dict[str, str]:
        return {p.name: f"{p.distribution} {p.version}".strip() for p in self.plugins.values()
                if p.status == "loaded"}


_DEFAULT: PluginManager | None = None


def get_manager(reload: bool = False) -> PluginManager:
    """The process-wide manager, loaded from entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None or reload:
        manager = PluginManager()
        manager.load_entry_points()
        _DEFAULT = manager
    return _DEFAULT
