import textwrap
from pathlib import Path

import pytest

import harness.plugins as hp
from harness.plugins import PluginManager

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def write_dist(root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]):
    """A fake installed distribution: a dist-info with entry points, and its modules."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[bench]\n{lines}\n")
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and steady when other jobs share the cores.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A directory on sys.path that holds fake distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(hp, "_DEFAULT", None)
    return site


@pytest.fixture
def manager(monkeypatch):
    """A manager holding only the test plugin."""
    import harness_test_plugin

    harness_test_plugin.EXECUTIONS.clear()
    m = PluginManager()
    m.register_plugin(harness_test_plugin, "testplugin")
    return m


@pytest.fixture
def suite_file(tmp_path):
    def write(text: str, name: str = "demo.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
