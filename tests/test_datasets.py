"""Tests of the built-in dataset plugin: the IDX reader, MNIST, random and blobs."""

from __future__ import annotations

import builtins
import gzip
import os
import struct
import sys
import types
from pathlib import Path

import pytest
import torch

try:
    import bench_datasets  # noqa: F401
except ImportError:  # not pip-installed: run from the checkout
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]

import bench_datasets
from bench_datasets import MNIST, DatasetError
from bench_datasets import idx_images as idx_mod
from bench_datasets.idx import IDXError, read_idx
from bench_datasets.synthetic import Blobs, RandomData
from harness.api.components import check_type
from harness.api.dataset import DATA_DIR_ENV
from harness.plugins import PluginManager

CPU = torch.device("cpu")
MNIST_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def idx_bytes(t: torch.Tensor, *, magic: bytes | None = None) -> bytes:
    head = magic if magic is not None else bytes([0, 0, 0x08, t.dim()])
    return head + struct.pack(f">{t.dim()}I", *t.shape) + bytes(t.flatten().tolist())


def write_idx(path: Path, t: torch.Tensor) -> Path:
    data = idx_bytes(t)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def rand_u8(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


@pytest.fixture(autouse=True)
def _fresh_cache():
    idx_mod.clear_cache()
    yield
    idx_mod.clear_cache()


# -- IDX ---------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(17,), (5, 28, 28), (3, 4, 5, 6)])
def test_idx_round_trip(tmp_path, suffix, shape):
    t = rand_u8(*shape)
    out = read_idx(write_idx(tmp_path / f"x-idx{suffix}", t))
    assert out.dtype == torch.uint8
    assert tuple(out.shape) == shape
    assert torch.equal(out, t)


def test_idx_empty_dimension(tmp_path):
    out = read_idx(write_idx(tmp_path / "empty", torch.zeros((0, 28, 28), dtype=torch.uint8)))
    assert tuple(out.shape) == (0, 28, 28)


def _corrupt_cases():
    t = rand_u8(4, 3, 2)
    good = idx_bytes(t)
    gz = gzip.compress(good)
    crc_flipped = bytearray(gz)
    crc_flipped[-8] ^= 0xFF  # the CRC32 trailer
    return {
        "wrong magic": ("plain", idx_bytes(t, magic=bytes([1, 0, 0x08, 3])), "wrong magic number"),
        "gzip without .gz": ("plain", gz, "looks gzip-compressed"),
        "type float": ("plain", idx_bytes(t, magic=bytes([0, 0, 0x0D, 3])),
                       "unsupported IDX type code 0x0d"),
        "type unknown": ("plain", idx_bytes(t, magic=bytes([0, 0, 0x42, 3])),
                         "unsupported IDX type code 0x42"),
        "zero dims": ("plain", bytes([0, 0, 8, 0]), "0 dimensions"),
        "short header": ("plain", bytes([0, 0]), "too short"),
        "truncated dims": ("plain", good[:4 + 6], "truncated header"),
        "truncated data": ("plain", good[:-1], "truncated data: dimensions [4, 3, 2] need 24 bytes, file has 23"),
        "overlong data": ("plain", good + b"\0\0", "overlong data: dimensions [4, 3, 2] need 24 bytes, file has 26"),
        "gz truncated data": ("gz", gzip.compress(good[:-3]), "truncated data"),
        "gz overlong data": ("gz", gzip.compress(good + b"x"), "overlong data"),
        "gz truncated stream": ("gz", gz[: len(gz) // 2], "truncated gzip stream"),
        "gz bad crc": ("gz", bytes(crc_flipped), "corrupt gzip stream"),
        "gz trailing garbage": ("gz", gz + b"garbage!", "corrupt gzip stream"),
        "gz not gzip": ("gz", good, "not a gzip file"),
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_idx_corrupt_file_is_a_clear_error(tmp_path, case):
    kind, data, phrase = _corrupt_cases()[case]
    path = tmp_path / ("bad-idx.gz" if kind == "gz" else "bad-idx")
    path.write_bytes(data)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert phrase in str(info.value)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# -- MNIST from hand-made files --------------------------------------------

def make_fake_mnist(root: Path, n_train: int = 12, n_test: int = 5, *, gz: bool = True,
                    labels: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    labels = labels or {}
    tensors = {
        "train-images-idx3-ubyte": rand_u8(n_train, 28, 28, seed=1),
        "train-labels-idx1-ubyte": labels.get("train", torch.arange(n_train, dtype=torch.uint8) % 10),
        "t10k-images-idx3-ubyte": rand_u8(n_test, 28, 28, seed=2),
        "t10k-labels-idx1-ubyte": labels.get("test", (torch.arange(n_test, dtype=torch.uint8) * 3) % 10),
    }
    for i, (name, t) in enumerate(tensors.items()):
        suffix = ".gz" if gz and i % 2 == 0 else ""  # a mix of both forms
        write_idx(raw / f"{name}{suffix}", t)
    return tensors


def test_mnist_loads_fake_files(tmp_path):
    t = make_fake_mnist(tmp_path)
    s = MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    assert s.num_classes == 10
    assert s.train.x.shape == (12, 784) and s.test.x.shape == (5, 784)
    assert s.train.x.dtype == torch.float32 and s.train.y.dtype == torch.int64
    expect = t["train-images-idx3-ubyte"].reshape(12, 784).float() / 255
    assert torch.equal(s.train.x, expect)
    assert torch.equal(s.train.y, t["train-labels-idx1-ubyte"].long())
    assert torch.equal(s.test.y, t["t10k-labels-idx1-ubyte"].long())
    assert 0.0 <= float(s.train.x.min()) and float(s.train.x.max()) <= 1.0


def test_mnist_unflattened_and_float64(tmp_path):
    t = make_fake_mnist(tmp_path, gz=False)
    s = MNIST(data_dir=str(tmp_path), flatten=False).load(CPU, torch.float64)
    assert s.train.x.shape == (12, 1, 28, 28) and s.test.x.shape == (5, 1, 28, 28)
    assert s.train.x.dtype == torch.float64
    assert torch.equal(s.test.x[:, 0], t["t10k-images-idx3-ubyte"].double() / 255)


def test_mnist_subsets_are_the_first_samples(tmp_path):
    make_fake_mnist(tmp_path)
    full = MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    sub = MNIST(data_dir=str(tmp_path), n_train=7, n_test=2).load(CPU, torch.float32)
    assert len(sub.train) == 7 and len(sub.test) == 2
    assert torch.equal(sub.train.x, full.train.x[:7]) and torch.equal(sub.train.y, full.train.y[:7])
    assert torch.equal(sub.test.x, full.test.x[:2]) and torch.equal(sub.test.y, full.test.y[:2])
    with pytest.raises(ValueError, match="n_train=13 but the split has only 12"):
        MNIST(data_dir=str(tmp_path), n_train=13).load(CPU, torch.float32)


@pytest.mark.parametrize("bad", [{"n_train": 0}, {"n_test": -1}, {"n_train": True}, {"n_test": 2.5}])
def test_mnist_rejects_bad_subset_sizes(bad):
    with pytest.raises(ValueError):
        MNIST(**bad)


def test_mnist_rejects_integer_dtype(tmp_path):
    make_fake_mnist(tmp_path)
    with pytest.raises(ValueError, match="floating point"):
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.int64)


def test_mnist_parses_once_per_process(tmp_path, monkeypatch):
    t = make_fake_mnist(tmp_path)
    calls = []
    real = idx_mod.read_idx
    monkeypatch.setattr(idx_mod, "read_idx", lambda p: calls.append(p) or real(p))
    a = MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    b = MNIST(data_dir=str(tmp_path), flatten=False, n_train=3).load(CPU, torch.float64)
    assert len(calls) == 4
    assert torch.equal(b.train.x.reshape(3, 784),
                       t["train-images-idx3-ubyte"][:3].reshape(3, 784).double() / 255)
    # Converting must not have touched the cached uint8 tensors.
    c = MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    assert torch.equal(a.train.x, c.train.x) and len(calls) == 4


def test_mnist_default_dir_comes_from_env(tmp_path, monkeypatch):
    make_fake_mnist(tmp_path, n_train=4)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert len(MNIST().load(CPU, torch.float32).train) == 4


def test_mnist_label_count_mismatch(tmp_path):
    make_fake_mnist(tmp_path, labels={"test": torch.zeros(4, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: 4 labels for 5 images in t10k-images"):
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)


def test_mnist_label_out_of_range(tmp_path):
    make_fake_mnist(tmp_path, labels={"train": torch.full((12,), 10, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*label 10 out of range"):
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)


def test_mnist_corrupt_file_names_it(tmp_path):
    make_fake_mnist(tmp_path)
    bad = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte: truncated data"):
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)


# -- MNIST missing files / torchvision --------------------------------------

def test_missing_files_without_torchvision(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: None)
    with pytest.raises(DatasetError) as info:
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for name in MNIST_NAMES:
        assert name in msg
    assert str((tmp_path / "MNIST" / "raw").resolve()) in msg
    assert "torchvision is not installed" in msg
    assert "--data-dir" in msg and DATA_DIR_ENV in msg and "MNIST/raw/" in msg
    assert 'pip install "eqprop-bench[vision]"' in msg


def test_missing_files_lists_only_the_missing_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: None)
    make_fake_mnist(tmp_path)
    for p in (tmp_path / "MNIST" / "raw").glob("t10k-labels*"):
        p.unlink()
    with pytest.raises(DatasetError) as info:
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte" in msg
    assert "train-images-idx3-ubyte" not in msg and "t10k-images-idx3-ubyte" not in msg


def _fake_torchvision(download):
    calls = []

    def MNIST(root, train=True, download=False):  # noqa: N802 - mimics torchvision
        calls.append({"root": root, "download": download})
        download_impl(Path(root))

    download_impl = download
    module = types.SimpleNamespace(datasets=types.SimpleNamespace(MNIST=MNIST))
    return module, calls


def test_missing_files_downloaded_with_torchvision(tmp_path, monkeypatch):
    module, calls = _fake_torchvision(lambda root: make_fake_mnist(root, n_train=6))
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: module)
    s = MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    assert calls == [{"root": str(tmp_path), "download": True}]
    assert len(s.train) == 6


def test_torchvision_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    def fail(root):
        raise RuntimeError("network unreachable")

    module, _ = _fake_torchvision(fail)
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: module)
    with pytest.raises(DatasetError, match="failed .*RuntimeError: network unreachable") as info:
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_torchvision_download_that_produces_nothing(tmp_path, monkeypatch):
    module, _ = _fake_torchvision(lambda root: None)
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: module)
    with pytest.raises(DatasetError, match="did not produce them"):
        MNIST(data_dir=str(tmp_path)).load(CPU, torch.float32)


@pytest.mark.parametrize("exc", [ImportError("no torchvision"), RuntimeError("operator torchvision::nms does not exist")])
def test_any_torchvision_import_failure_counts_as_not_installed(monkeypatch, exc):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torchvision" or name.startswith("torchvision."):
            raise exc
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert idx_mod.import_torchvision() is None


# -- MNIST, the real files -------------------------------------------------

def _real_data_dir() -> Path | None:
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if (shared / "MNIST" / "raw").is_dir() else None


def test_real_mnist(monkeypatch):
    data_dir = _real_data_dir()
    if data_dir is None:
        pytest.skip(f"no MNIST: set {DATA_DIR_ENV} to a directory containing MNIST/raw/")
    monkeypatch.setattr(idx_mod, "import_torchvision", lambda: None)  # never download in tests
    s = MNIST(data_dir=str(data_dir)).load(CPU, torch.float32)
    assert s.train.x.shape == (60000, 784) and s.test.x.shape == (10000, 784)
    assert s.train.y.shape == (60000,) and s.test.y.shape == (10000,)
    assert float(s.train.x.min()) == 0.0 and float(s.train.x.max()) == 1.0
    assert abs(float(s.train.x.mean()) - 0.1307) < 1e-3  # the well-known MNIST mean
    train_counts = torch.bincount(s.train.y, minlength=10)
    test_counts = torch.bincount(s.test.y, minlength=10)
    assert train_counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert len(test_counts) == 10 and all(800 <= c <= 1200 for c in test_counts.tolist())
    conv = MNIST(data_dir=str(data_dir), flatten=False, n_train=100, n_test=10).load(CPU, torch.float32)
    assert conv.train.x.shape == (100, 1, 28, 28) and conv.test.x.shape == (10, 1, 28, 28)
    assert torch.equal(conv.train.x.reshape(100, 784), s.train.x[:100])


# -- random and blobs --------------------------------------------------------

@pytest.mark.parametrize("cls,kw", [(RandomData, {}), (Blobs, {})])
def test_synthetic_deterministic_and_independent_of_global_rng(cls, kw):
    torch.manual_seed(123)
    a = cls(seed=7, **kw).load(CPU, torch.float32)
    state = torch.get_rng_state()
    torch.manual_seed(999)
    b = cls(seed=7, **kw).load(CPU, torch.float32)
    torch.manual_seed(123)
    cls(seed=7, **kw).load(CPU, torch.float32)
    assert torch.equal(torch.get_rng_state(), state), "loading must not consume the global RNG"
    for sa, sb in ((a.train, b.train), (a.test, b.test)):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
    c = cls(seed=8, **kw).load(CPU, torch.float32)
    assert not torch.equal(a.train.x, c.train.x)
    assert not torch.equal(a.train.x[: len(a.test)], a.test.x), "train and test must differ"


@pytest.mark.parametrize("cls", [RandomData, Blobs])
def test_synthetic_test_split_does_not_depend_on_n_train(cls):
    a = cls(n_train=50, seed=3).load(CPU, torch.float32)
    b = cls(n_train=80, seed=3).load(CPU, torch.float32)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)


def test_random_shapes_ranges_and_dtype():
    s = RandomData(input_shape=[3, 4], num_classes=5, n_train=4000, n_test=7).load(CPU, torch.float64)
    assert s.train.x.shape == (4000, 3, 4) and s.test.x.shape == (7, 3, 4)
    assert s.train.x.dtype == torch.float64 and s.train.y.dtype == torch.int64
    assert 0.0 <= float(s.train.x.min()) and float(s.train.x.max()) <= 1.0
    assert abs(float(s.train.x.mean()) - 0.5) < 0.02
    counts = torch.bincount(s.train.y, minlength=5)
    assert len(counts) == 5 and all(650 <= c <= 950 for c in counts.tolist())
    f32 = RandomData(input_shape=[3, 4], num_classes=5, n_train=4000, n_test=7).load(CPU, torch.float32)
    assert torch.equal(f32.train.x.double(), s.train.x), "same samples in every dtype"


def test_random_defaults_match_the_paper_toy_setup():
    s = RandomData().load(CPU, torch.float32)
    assert s.train.x.shape == (100, 10) and s.test.x.shape == (100, 10) and s.num_classes == 5
    assert int(s.train.y.max()) < 5


@pytest.mark.parametrize("cls,bad", [
    (RandomData, {"input_shape": []}), (RandomData, {"input_shape": [0]}),
    (RandomData, {"num_classes": 0}), (RandomData, {"n_train": 0}), (RandomData, {"seed": -1}),
    (Blobs, {"input_size": 0}), (Blobs, {"n_test": 0}), (Blobs, {"noise": -0.1}),
    (Blobs, {"noise": float("nan")}), (Blobs, {"seed": 1.5}),
])
def test_synthetic_rejects_bad_parameters(cls, bad):
    with pytest.raises(ValueError):
        cls(**bad)


def test_blobs_shapes_and_range():
    s = Blobs(input_size=6, num_classes=3, n_train=30, n_test=9).load(CPU, torch.float32)
    assert s.train.x.shape == (30, 6) and s.test.x.shape == (9, 6) and s.num_classes == 3
    assert 0.0 <= float(s.train.x.min()) and float(s.train.x.max()) <= 1.0
    assert set(s.train.y.tolist()) <= {0, 1, 2}


def _test_accuracy_of_a_small_net(s, inputs: int, classes: int) -> float:
    """Train a 32-unit MLP with Adam (150 full-batch steps) and return its test accuracy."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(inputs, 32), torch.nn.Tanh(), torch.nn.Linear(32, classes))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(s.train.x), s.train.y).backward()
        opt.step()
    with torch.no_grad():
        return (net(s.test.x).argmax(1) == s.test.y).float().mean().item()


def test_blobs_is_learnable_by_a_small_net():
    acc = _test_accuracy_of_a_small_net(Blobs().load(CPU, torch.float32), 20, 10)
    assert acc > 0.9, acc


def test_random_labels_are_not_learnable():
    """Sanity check of the contrast with blobs: random labels stay at chance on test data."""
    acc = _test_accuracy_of_a_small_net(RandomData(n_train=500, n_test=500).load(CPU, torch.float32), 10, 5)
    assert acc < 0.35, acc


# -- registration --------------------------------------------------------------

def test_plugin_registers_its_datasets():
    pm = PluginManager()
    info = pm.register_plugin(bench_datasets, "datasets")
    assert info.status == "loaded", info.error
    assert pm.registry.names("dataset") == ["blobs", "cifar10", "cifar100", "digits", "fashion_mnist", "kmnist",
                                            "mnist", "random", "svhn"]
    expected = {
        "mnist": ["data_dir", "n_train", "n_test", "flatten", "mean", "std", "augment", "augment_pad",
                  "augment_padding", "augment_flip", "pad"],
        "random": ["input_shape", "num_classes", "n_train", "n_test", "seed"],
        "blobs": ["input_size", "num_classes", "n_train", "n_test", "noise", "seed"],
    }
    for name, params in expected.items():
        comp = pm.registry.get("dataset", name)
        assert [p.name for p in comp.params] == params
        assert comp.doc and all(p.doc for p in comp.params)
        for p in comp.params:
            assert not p.required and check_type(p.default, p.type), (name, p)
        assert hasattr(comp.build({}), "load")
    built = pm.registry.get("dataset", "random").build({"input_shape": [2, 2], "seed": 4})
    assert built.load(CPU, torch.float32).train.x.shape == (100, 2, 2)
