import gzip
import pickle
import struct
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import harness.plugins as hp
from harness.plugins import PluginManager

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--bench-device", default="cpu",
                     help="where the tests marked `device` run: cpu (default) or cuda (scripts/gpu-check)")


@pytest.fixture
def device(request) -> str:
    """The device of the tests marked ``device``: the same checks on a CPU in CI and on a GPU through
    ``pytest -m device --bench-device cuda`` (what scripts/gpu-check runs)."""
    name = request.config.getoption("--bench-device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--bench-device {name}: this torch ({torch.__version__}) sees no CUDA GPU")
    from harness.run.environment import pick_device

    pick_device(name)  # as the runner does: on CUDA, float32 products in float32 (no TF32)
    return name


@pytest.fixture
def cuda_device(device) -> str:
    """For the checks that exist only on CUDA (a real CUDA-graph capture): skipped elsewhere."""
    if not device.startswith("cuda"):
        pytest.skip("needs CUDA: run with --bench-device cuda (scripts/gpu-check)")
    return device


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
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def registry():
    """Every installed plugin, loaded through the `bench` entry points."""
    m = PluginManager()
    m.load_entry_points()
    return m.registry


def final_values(runner, run) -> dict[str, float]:
    """A recorded run's final values, metric -> value."""
    return {r["metric"]: r["value"] for r in runner.store(run).metrics()["final"]}


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


class ReplayBackend:
    """Stands in for a CUDA graph: capture records the function, replay reruns it on the static buffers."""

    def __init__(self, broken=False, fail=False):
        self.broken, self.fail, self.fn, self.replays = broken, fail, None, 0

    def capture(self, fn, restore):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        fn()  # warm-up, as the CUDA backend does, then undone
        restore()
        self.fn = fn
        self.out = {k: torch.zeros_like(v) for k, v in fn().items()}  # a capture records, runs nothing:
        restore()  # the outputs are static tensors the replays write into
        return self.out

    def replay(self):
        self.replays += 1
        for k, v in self.fn().items():
            self.out[k].copy_(v)
        if self.broken:  # e.g. a host value baked into the graph: the replay does something else
            self.fn()


@pytest.fixture
def poison_run(monkeypatch):
    """``poison_run(pattern, after_batches)``: the training runs whose id contains ``pattern``
    diverge, the same way on every machine: after their ``after_batches``-th mini-batch a NaN is
    written into their input weights (``w.W23``... the first edge), in their own model or in their
    slice of a stacked one; nothing else changes. (Not an lr near float overflow, whose outcome
    depends on the CPU's arithmetic.)"""
    import torch

    import bench_runs.train as train

    real_step, real_train = train.graphed_train_step, train.Train._train

    def arm(pattern: str, after_batches: int) -> None:
        def _train(self, ctxs, model, algorithm=None):
            victims = [i for i, ctx in enumerate(ctxs) if pattern in ctx.spec.id]
            calls = [0]

            def graphed(algorithm, model, T, K, **kwargs):
                step = real_step(algorithm, model, T=T, K=K, **kwargs)

                def poisoned(x, y):
                    step(x, y)
                    calls[0] += 1
                    if calls[0] == after_batches:
                        with torch.no_grad():
                            first = next(iter(model.w.values()))
                            for i in victims:
                                (first[i] if model.members else first)[0, 0] = float("nan")
                return poisoned

            monkeypatch.setattr(train, "graphed_train_step", graphed)
            try:
                return real_train(self, ctxs, model, algorithm)
            finally:
                monkeypatch.setattr(train, "graphed_train_step", real_step)

        monkeypatch.setattr(train.Train, "_train", _train)

    return arm


@pytest.fixture
def interrupt_ep(monkeypatch):
    """``interrupt_ep(n)``: the n-th call of ``EP.train_step`` from now raises KeyboardInterrupt (as a
    Ctrl-C in the middle of an epoch); returns the call counter, whose ``"n"`` a test sets to
    ``-10**9`` to stop interrupting and then reads to count the calls of the resumed run."""
    import bench_algorithms.ep as ep_module

    calls = {"n": 0}
    original = ep_module.EP.train_step

    def arm(at: int) -> dict:
        def interrupt(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == at:
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)

        monkeypatch.setattr(ep_module.EP, "train_step", interrupt)
        return calls

    return arm


#: The [defaults] of a small training suite on blobs (seconds per run), shared by the training tests.
def tiny_net_suite(name: str) -> str:
    """A suite of one tiny P net on blobs, trained one epoch by EP and by BPTT (seconds): the base that
    tests of suite files edit (bad keys, overrides)."""
    return f'name = "{name}"\n' + TINY_NET


TINY_NET = """\
[defaults]
kind = "train"
device = "cpu"
seeds = [0]
dataset = { name = "blobs", input_size = 6, num_classes = 3, n_train = 40, n_test = 20 }
model = { name = "p", input_size = 6, output_size = 3, hidden = [5], activation = "sigmoid" }
T = 5
K = 2
epochs = 1
batch_size = 10
algorithm = { lr = [0.1, 0.1] }

[[runs]]
name = "net"
grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]
"""


BLOBS_TRAIN = """
    [defaults]
    kind = "train"
    seeds = [0]
    device = "cpu"
    dataset = { name = "blobs", input_size = 12, num_classes = 4, n_train = 400, n_test = 100 }
    T = 20
    K = 6
    epochs = 3
"""


def run_suite_text(root: Path, text: str):
    """Write a suite's TOML under ``root``, run every run with the installed plugins into
    ``root/results``; (path, suite, runner, outcomes by run name)."""
    from harness.run.runner import Runner
    from harness.suite.load import load_suite

    path = root / "suite.toml"
    path.write_text(text)
    registry = hp.get_manager().registry
    suite = load_suite(path, registry)
    runner = Runner(suite, registry, root / "results")
    return path, suite, runner, {o.run.name: o for o in runner.execute(suite.runs)}


# -- small files in the datasets' exact on-disk formats ---------------------------------------------
def write_cifar(root: Path, folder: str, files: dict[str, int], label_key: bytes, classes: int) -> dict:
    """CIFAR "python version" batches of random images under ``root/folder``; the dicts written."""
    rng = np.random.default_rng(0)
    out = {}
    (root / folder).mkdir(parents=True)
    for name, n in files.items():
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 label_key: [int(v) for v in rng.integers(0, classes, n)], b"batch_label": b"x"}
        (root / folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        out[name] = batch
    return out


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """One IDX file (MNIST's format) of uint8 values, gzipped if asked."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
