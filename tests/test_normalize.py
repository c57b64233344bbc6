"""Per-channel input normalisation of the image sets (``mean``, ``std``): Laborieux et al. 2021's CIFAR-10
setup normalises after the random crop and flip, so the crop's padding must be normalised black; on small
files written here in each exact on-disk format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_datasets import make_fake_mnist

import harness.plugins as hp
from bench_datasets import CIFAR10, KMNIST, MNIST, SVHN, FashionMNIST, cifar, idx_images, svhn
from bench_datasets.images import CIFAR10_MEAN, CIFAR10_STD, normalise
from conftest import write_cifar, write_idx
from harness.api.dataset import batch_generator
from harness.cli.commands import main

CPU, F32 = torch.device("cpu"), torch.float32
CIFAR_FILES = {f"data_batch_{i}": 3 for i in range(1, 6)} | {"test_batch": 4}


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    for module in (cifar, idx_images, svhn):
        module._CACHE.clear()
        monkeypatch.setattr(module, "import_torchvision", lambda: None)  # never download in tests
    yield
    idx_images.clear_cache()


def by_channel(values: list[float]) -> torch.Tensor:
    return torch.tensor(values).view(1, -1, 1, 1)


def test_cifar10_pixels_become_x_over_255_minus_mean_over_std_in_both_splits(tmp_path):
    raw = write_cifar(tmp_path, "cifar-10-batches-py", CIFAR_FILES, b"labels", 10)
    normed = CIFAR10(data_dir=str(tmp_path), mean=CIFAR10_MEAN, std=CIFAR10_STD).load(CPU, F32)
    first, test = raw["data_batch_1"][b"data"][0], raw["test_batch"][b"data"][1]
    for c, index in ((0, 0), (1, 1024), (2, 3071)):  # the red, green and blue planes
        h, w = divmod(index - 1024 * c, 32)
        assert normed.train.x[0, c, h, w] == pytest.approx((first[index] / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c])
        assert normed.test.x[1, c, h, w] == pytest.approx((test[index] / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c])
    plain = CIFAR10(data_dir=str(tmp_path)).load(CPU, F32)
    for split in ("train", "test"):
        expected = (getattr(plain, split).x - by_channel(CIFAR10_MEAN)) / by_channel(CIFAR10_STD)
        torch.testing.assert_close(getattr(normed, split).x, expected)
        assert torch.equal(getattr(normed, split).y, getattr(plain, split).y)
    flat = CIFAR10(data_dir=str(tmp_path), flatten=True, mean=CIFAR10_MEAN, std=CIFAR10_STD).load(CPU, F32)
    assert torch.equal(flat.train.x, normed.train.x.reshape(15, -1))  # normalised per channel, then flattened


def test_grey_sets_normalise_their_one_channel(tmp_path):
    t = make_fake_mnist(tmp_path)
    s = MNIST(data_dir=str(tmp_path), mean=[0.1307], std=[0.3081]).load(CPU, F32)
    expected = (t["train-images-idx3-ubyte"].reshape(12, 784).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(s.train.x, expected)
    assert MNIST(data_dir=str(tmp_path), flatten=False, mean=[0.5], std=[0.5]).load(CPU, F32).test.x.shape == \
        (5, 1, 28, 28)
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28))
    for split, n in (("train", 4), ("t10k", 2)):
        write_idx(raw / f"{split}-images-idx3-ubyte", images[:n])
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n))
    k = KMNIST(data_dir=str(tmp_path), mean=[0.25], std=[2.0]).load(CPU, F32)
    assert k.train.x[2, 28 * 5 + 3] == pytest.approx((images[2, 5, 3] / 255 - 0.25) / 2.0)


def test_svhn_normalises_too(tmp_path):
    savemat = pytest.importorskip("scipy.io").savemat
    x = np.random.default_rng(2).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        savemat(tmp_path / name, {"X": x, "y": np.array([[10], [1], [9]], dtype=np.uint8)})
    s = SVHN(data_dir=str(tmp_path), mean=[0.4, 0.5, 0.6], std=[0.1, 0.2, 0.3]).load(CPU, F32)
    assert s.test.x[1, 2, 4, 7] == pytest.approx((x[4, 7, 2, 1] / 255 - 0.6) / 0.3)


def test_the_defaults_leave_the_data_as_before_bit_for_bit(tmp_path):
    raw = write_cifar(tmp_path, "cifar-10-batches-py", CIFAR_FILES, b"labels", 10)
    before = torch.from_numpy(raw["test_batch"][b"data"]).reshape(4, 3, 32, 32).to(F32).div_(255.0)  # the old split
    ds = CIFAR10(data_dir=str(tmp_path), augment=True)
    assert ds.norm is None and ds.mean is None and ds.std is None
    assert torch.equal(ds.load(CPU, F32).test.x, before)
    padded = torch.nn.functional.pad(before, (4, 4, 4, 4))  # the old augmentation: zero padding
    out = ds.augment_batch(before, batch_generator(3, 0, 0))
    for i, img in enumerate(out):
        assert any(torch.equal(img, (c.flip(-1) if f else c)) for dy in range(9) for dx in range(9) for f in (0, 1)
                   for c in [padded[i, :, dy:dy + 32, dx:dx + 32]])
    t = make_fake_mnist(tmp_path)
    assert torch.equal(MNIST(data_dir=str(tmp_path)).load(CPU, F32).train.x,
                       t["train-images-idx3-ubyte"].reshape(12, 784).float() / 255)
    assert repr(ds).endswith("augment=True)") and repr(MNIST()).endswith("flatten=True, augment=False)")


@pytest.mark.parametrize("cls, kwargs, match", [
    (CIFAR10, {"mean": CIFAR10_MEAN}, r"cifar10: mean is given but std is not; give both \(one value per channel"),
    (CIFAR10, {"std": CIFAR10_STD}, r"cifar10: std is given but mean is not; give both"),
    (CIFAR10, {"mean": [0.5], "std": [0.5]}, r"cifar10: mean has 1 value but the images have 3 channels; give one "
                                             "per channel"),
    (CIFAR10, {"mean": CIFAR10_MEAN, "std": [1.0, 1.0]}, r"cifar10: std has 2 values but the images have 3 channels"),
    (CIFAR10, {"mean": CIFAR10_MEAN, "std": [1.0, 0.0, 1.0]}, r"cifar10: std\[1\] = 0.0; each std must be > 0"),
    (SVHN, {"mean": [0, 0, 0], "std": [1, 1, -2]}, r"svhn: std\[2\] = -2; each std must be > 0"),
    (SVHN, {"mean": [0, float("nan"), 0], "std": [1, 1, 1]}, r"svhn: mean\[1\] = nan; give finite numbers"),
    (FashionMNIST, {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}, r"fashion_mnist: mean has 3 values but the images "
                                                               "have 1 channel; give one per channel"),
    (MNIST, {"mean": [0.1307, 0.1], "std": [0.3081]}, r"mnist: mean has 2 values but the images have 1 channel"),
    (MNIST, {"std": [0.3081]}, r"mnist: std is given but mean is not"),
])
def test_a_wrong_normalisation_is_refused_saying_what_to_do(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("flatten", [False, True])
def test_augmenting_normalised_images_equals_normalising_augmented_ones(tmp_path, flatten):
    """torchvision's order, crop and flip in pixel space and then Normalize, pads with black: the same
    result as cropping normalised images padded with normalised black."""
    write_cifar(tmp_path, "cifar-10-batches-py", CIFAR_FILES, b"labels", 10)
    plain = CIFAR10(data_dir=str(tmp_path), augment=True, flatten=flatten)
    normed = CIFAR10(data_dir=str(tmp_path), augment=True, flatten=flatten, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    x, nx = plain.load(CPU, F32).train.x, normed.load(CPU, F32).train.x
    for batch in range(3):
        then_normalised = normalise(plain.augment_batch(x, batch_generator(7, 2, batch)).reshape(15, 3, 32, 32),
                                    normed.norm)
        augmented = normed.augment_batch(nx, batch_generator(7, 2, batch))
        assert augmented.shape == nx.shape
        torch.testing.assert_close(augmented.reshape(15, 3, 32, 32), then_normalised, rtol=1e-6, atol=1e-6)
    # the check bites: the crops did reach the padding, which is normalised black, not 0
    black = normalise(torch.zeros(1, 3, 1, 1), normed.norm).view(3)
    assert black.tolist() == pytest.approx([-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD)])
    out = augmented.reshape(15, 3, 32, 32)
    assert all(bool((out[:, c] == black[c]).any()) for c in range(3))
    grey = FashionMNIST(augment=True, mean=[0.2], std=[0.5])
    g = torch.rand(6, 784)
    torch.testing.assert_close(grey.augment_batch(normalise(g.clone().view(6, 1, 28, 28), grey.norm).view(6, 784),
                                                  batch_generator(1, 0, 0)),
                               normalise(FashionMNIST(augment=True).augment_batch(g, batch_generator(1, 0, 0))
                                         .view(6, 1, 28, 28), grey.norm).view(6, 784), rtol=1e-6, atol=1e-6)


def test_bench_list_datasets_shows_mean_and_std_quiet_at_their_default(monkeypatch, registry):
    for name in ("cifar10", "cifar100", "svhn", "fashion_mnist", "kmnist", "mnist"):
        params = {p.name: p for p in registry.get("dataset", name).params}
        assert params["mean"].default is None and params["std"].default is None, name
        assert params["mean"].quiet_default and params["std"].quiet_default, name  # no stored run id changes
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(hp, "_DEFAULT", None)
    result = CliRunner().invoke(main, ["list", "datasets"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.count("mean: list[float] | None, default None — one value per image channel") == 6
    assert result.output.count("std: list[float] | None, default None — one value per image channel, each > 0") == 6


def test_edge_padding_repeats_the_border_and_commutes_with_the_normalisation(tmp_path):
    """augment_padding = "edge" (torchvision's padding_mode = 'edge', the DCHN papers' codes): every crop is
    the image padded by its repeated border pixels, cut at the drawn offset; normalising before or after
    gives the same; augment_flip = false keeps the crops and drops the flips."""
    write_cifar(tmp_path, "cifar-10-batches-py", CIFAR_FILES, b"labels", 10)
    edge = CIFAR10(data_dir=str(tmp_path), augment=True, augment_padding="edge")
    x = edge.load(CPU, F32).train.x
    out = edge.augment_batch(x, batch_generator(3, 1, 0))
    g = batch_generator(3, 1, 0)  # the same draws, made here by hand
    dy, dx = torch.randint(0, 9, (15,), generator=g), torch.randint(0, 9, (15,), generator=g)
    flips = torch.rand(15, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
    for i in range(15):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(out[i], crop.flip(-1) if flips[i] else crop)
    assert bool(flips.any()) and not bool((dy == 4).all())  # the check bites: flips and shifts happened
    normed = CIFAR10(data_dir=str(tmp_path), augment=True, augment_padding="edge", mean=CIFAR10_MEAN, std=CIFAR10_STD)
    torch.testing.assert_close(normed.augment_batch(normed.load(CPU, F32).train.x, batch_generator(3, 1, 0)),
                               normalise(out.clone(), normed.norm), rtol=1e-6, atol=1e-6)
    crops = CIFAR10(data_dir=str(tmp_path), augment=True, augment_padding="edge", augment_flip=False)
    no_flip = crops.augment_batch(x, batch_generator(3, 1, 0))
    for i in range(15):
        assert torch.equal(no_flip[i], padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32])


def test_augmentation_options_without_augment_are_refused():
    with pytest.raises(ValueError, match="augment_padding and augment_flip shape the augmentation; set augment"):
        CIFAR10(augment_padding="edge")
    with pytest.raises(ValueError, match="set augment = true"):
        SVHN(augment_flip=False)


def test_the_grey_sets_pad_to_32_and_augment_as_scellier_et_al(tmp_path):
    """Scellier et al. 2023's MNIST and Fashion-MNIST: Pad(2, black) to 32x32, then (training only)
    RandomCrop(32, padding=2, edge) and, for Fashion-MNIST, a flip, then Normalize. Our load and
    augmentation give exactly that order, by hand, with the same draws; MNIST has the same options."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    for split, n in (("train", 7), ("t10k", 3)):
        write_idx(raw / f"{split}-images-idx3-ubyte", images[:n])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[:n])
    plain = FashionMNIST(data_dir=str(tmp_path), flatten=False).load(CPU, F32)
    padded = FashionMNIST(data_dir=str(tmp_path), flatten=False, pad=2).load(CPU, F32)
    assert padded.train.x.shape == (7, 1, 32, 32) and padded.test.x.shape == (3, 1, 32, 32)
    assert torch.equal(padded.train.x[:, :, 2:30, 2:30], plain.train.x)
    assert float(padded.train.x[:, :, :2].abs().max()) == 0.0  # black
    theirs = FashionMNIST(data_dir=str(tmp_path), flatten=False, pad=2, augment=True, augment_pad=2,
                          augment_padding="edge", mean=[0.286], std=[0.353])
    x = theirs.load(CPU, F32).train.x
    out = theirs.augment_batch(x, batch_generator(5, 1, 0))
    g = batch_generator(5, 1, 0)  # the draws, by hand
    dy, dx = torch.randint(0, 5, (7,), generator=g), torch.randint(0, 5, (7,), generator=g)
    flips = torch.rand(7, generator=g) < 0.5
    by_hand = torch.nn.functional.pad(padded.train.x, (2, 2, 2, 2), mode="replicate")  # pixels in [0, 1]
    for i in range(7):
        crop = by_hand[i:i + 1, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        crop = crop.flip(-1) if flips[i] else crop
        torch.testing.assert_close(out[i:i + 1], normalise(crop.clone(), theirs.norm), rtol=1e-6, atol=1e-6)
    assert bool(flips.any()) and not bool((dx == 2).all())  # the check bites


def test_mnist_has_the_same_padding_and_augmentation(tmp_path):
    from bench_datasets.images import Augmentation

    make_fake_mnist(tmp_path)
    m = MNIST(data_dir=str(tmp_path), flatten=True, pad=2, augment=True, augment_pad=2, augment_padding="edge",
              augment_flip=False)
    x = m.load(CPU, F32).train.x
    assert x.shape == (12, 1024) and m.input_shape == (1024,)
    same = Augmentation((1, 32, 32), pad=2, padding="edge", flip=False)
    assert torch.equal(m.augment_batch(x, batch_generator(2, 1, 3)), same(x, batch_generator(2, 1, 3)))
    assert torch.equal(MNIST(data_dir=str(tmp_path)).augment_batch(x, batch_generator(2, 1, 3)), x)  # off
    with pytest.raises(ValueError, match="augment_pad, augment_padding and augment_flip shape the augmentation"):
        MNIST(augment_pad=2)
    with pytest.raises(ValueError, match="too small to augment with augment_pad = 20"):
        FashionMNIST(augment=True, augment_pad=20)
