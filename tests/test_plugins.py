"""Plugin loading through the `bench` entry-point group."""

import pytest

from conftest import write_dist
from harness.api.components import ComponentError
from harness.plugins import PluginError, PluginManager

GOOD = """
    from harness import hookimpl, Param

    class Net:
        def __init__(self, width):
            self.width = width

    @hookimpl
    def register_models(register):
        register("good-net", Net, params=[Param("width", int, 4)], doc="A net.")
"""
BROKEN = "import this_module_does_not_exist\n"
CLASH = """
    from harness import hookimpl

    @hookimpl
    def register_models(register):
        register("good-net", dict)
"""
MISSPELLED = """
    from harness import hookimpl

    @hookimpl
    def register_modles(register):
        register("typo-net", dict)
"""


def load(monkeypatch, only=None):
    if only:
        monkeypatch.setenv("BENCH_PLUGINS", ",".join(only))
    m = PluginManager()
    m.load_entry_points()
    return m


def test_loads_plugin_from_entry_point(fake_site, monkeypatch):
    write_dist(fake_site, "good-dist", "1.2.3", {"good": "good_mod"}, {"good_mod": GOOD})
    m = load(monkeypatch, ["good"])
    info = m.plugins["good"]
    assert (info.status, info.distribution, info.version) == ("loaded", "good-dist", "1.2.3")
    assert info.components == ["model:good-net"]
    comp = m.registry.get("model", "good-net")
    assert comp.plugin == "good" and comp.build({}).width == 4
    assert comp.build({"width": 7}).width == 7


def test_broken_plugin_is_reported_and_others_load(fake_site, monkeypatch):
    write_dist(fake_site, "good-dist", "1.0", {"good": "good_mod"}, {"good_mod": GOOD})
    write_dist(fake_site, "broken-dist", "0.9", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    m = load(monkeypatch, ["good", "broken"])
    broken = m.plugins["broken"]
    assert broken.status == "failed"
    assert (broken.distribution, broken.version) == ("broken-dist", "0.9")
    assert "No module named 'this_module_does_not_exist'" in broken.error
    assert m.plugins["good"].status == "loaded"
    assert m.registry.names("model") == ["good-net"]
    assert [p.name for p in m.failures()] == ["broken"]


def test_strict_loading_raises(fake_site, monkeypatch):
    write_dist(fake_site, "broken-dist", "0.9", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    monkeypatch.setenv("BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'broken' \(broken-dist 0.9\) failed to load"):
        load(monkeypatch, ["broken"])


def test_restrict_and_disable_plugins(fake_site, monkeypatch):
    write_dist(fake_site, "good-dist", "1.0", {"good": "good_mod"}, {"good_mod": GOOD})
    write_dist(fake_site, "broken-dist", "0.9", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    m = load(monkeypatch, ["good", "broken"])
    assert m.plugins["broken"].status == "disabled" and not m.failures()
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS")
    m = load(monkeypatch, ["good"])
    assert set(m.plugins["good"].components) == {"model:good-net"}
    assert all(p.status == "disabled" for n, p in m.plugins.items() if n != "good")


def test_name_clash_names_both_plugins(fake_site, monkeypatch):
    write_dist(fake_site, "good-dist", "1.0", {"good": "good_mod"}, {"good_mod": GOOD})
    write_dist(fake_site, "clash-dist", "2.0", {"zclash": "clash_mod"}, {"clash_mod": CLASH})
    with pytest.raises(ComponentError, match=r"model 'good-net' is registered twice: by plugin 'good' "
                                             r"and by plugin 'zclash'"):
        load(monkeypatch, ["good", "zclash"])


def test_misspelled_hook_fails_loudly(fake_site, monkeypatch):
    write_dist(fake_site, "typo-dist", "1.0", {"typo": "typo_mod"}, {"typo_mod": MISSPELLED})
    m = load(monkeypatch, ["typo"])
    info = m.plugins["typo"]
    assert info.status == "failed"
    assert "register_modles" in info.error and "register_models" in info.error
    assert m.registry.names("model") == []
    monkeypatch.setenv("BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="register_modles"):
        load(monkeypatch, ["typo"])


def test_builtin_plugins_are_entry_points():
    """The built-ins come through the same group as third-party plugins."""
    import importlib.metadata as md

    names = {ep.name: ep.value for ep in md.entry_points(group="bench") if ep.dist.name == "eqprop-bench"}
    assert names == {"models": "bench_models", "algorithms": "bench_algorithms", "metrics": "bench_metrics",
                     "datasets": "bench_datasets", "runs": "bench_runs", "executors": "bench_executors", "trackers": "bench_trackers"}


def test_an_unknown_component_says_when_a_plugin_filter_may_have_left_it_out(monkeypatch):
    from harness.api.components import ComponentError, Registry

    registry = Registry()
    monkeypatch.setenv("BENCH_PLUGINS", "models")
    with pytest.raises(ComponentError, match="unknown run_kind 'train'; note BENCH_PLUGINS=models limits the plugins "
                                             r"loaded \(built-ins included"):
        registry.get("run_kind", "train")
    monkeypatch.delenv("BENCH_PLUGINS")
    with pytest.raises(ComponentError) as info:
        registry.get("run_kind", "train")
    assert "BENCH_PLUGINS" not in str(info.value)
