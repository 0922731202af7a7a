"""Image tasks: IDX reading on generated fixtures, and a real Fashion-MNIST evaluation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from nnit.eval.harness import evaluate
from nnit.tasks.images import find_split_files, load_split, pool_images, read_idx, write_idx
from nnit.tasks.registry import FASHION_MNIST_DIR, TaskError, get_task
from nnit.weights import Architecture, WeightSet


def _fixture(tmp_path: Path, n: int = 20, gz: bool = True) -> Path:
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28)))
    write_idx(tmp_path / f"t10k-labels.idx1-ubyte{sfx}", rng.integers(0, 10, (n,)))  # MNIST's dotted spelling
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), a)
    np.testing.assert_array_equal(read_idx(p), a)


def test_bad_idx_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78abc")
    with pytest.raises(TaskError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    p = write_idx(tmp_path / "short", np.zeros((4, 5), np.uint8))
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(TaskError, match="header says"):
        read_idx(p)
    with pytest.raises(TaskError, match="no test images file"):
        find_split_files(tmp_path, "test")


def test_pooling_is_block_mean():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, :4, :4] = 255
    x = pool_images(img, 4)
    assert x.shape == (1, 49) and x[0, 0] == pytest.approx(1.0) and x[0, 1:].sum() == 0


def test_mnist_from_user_dir(tmp_path):
    d = _fixture(tmp_path)
    x, y = load_split("MNIST", "test", d)
    assert x.shape == (20, 49) and y.shape == (20,) and 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(TaskError, match="needs --data-dir"):
        load_split("MNIST", "test")
    ws = WeightSet.init_random(Architecture(49, (8,), 10), 3)
    r = evaluate("MNIST", ws, data_dir=str(d))
    assert r.metrics["accuracy"].shape == (3,) and r.info["num_examples"] == 20


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_accuracy():
    """A linear classifier fitted on the real train split scores well above chance on test."""
    spec = get_task("FashionMNIST")
    x, y = load_split(spec, "train")
    assert x.shape == (60000, 49)
    # least-squares fit to one-hot targets: a closed-form linear classifier, milliseconds to fit
    xb = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    sol = torch.linalg.lstsq(xb, torch.nn.functional.one_hot(y, 10).double()).solution  # (50, 10)
    lin = torch.nn.Linear(49, 10)
    with torch.no_grad():
        lin.weight.copy_(sol[:49].T)
        lin.bias.copy_(sol[49])
    trained = WeightSet.from_sequential(torch.nn.Sequential(lin))
    rand = WeightSet.init_random(trained.arch, 1, generator=torch.Generator().manual_seed(0))
    r = evaluate("FashionMNIST", WeightSet.stack([trained, rand]))
    acc = r.metrics["accuracy"]
    assert r.info["num_examples"] == 10000
    assert acc[0] > 0.6, acc  # a least-squares linear classifier on 7x7 pooled images
    assert acc[1] < 0.3
    assert r.metrics["loss"][0] < r.metrics["loss"][1]


def test_fit_and_val_partition_the_training_split():
    """Generators train on `fit`, datasets are filtered on `val`, results use `test`: no overlap."""
    from nnit.tasks.images import VALIDATION_SIZE, load_split

    x_tr, y_tr = load_split("FashionMNIST", "train")
    x_fit, y_fit = load_split("FashionMNIST", "fit")
    x_val, y_val = load_split("FashionMNIST", "val")
    assert len(y_val) == VALIDATION_SIZE and len(y_fit) + len(y_val) == len(y_tr)
    assert torch.equal(torch.cat([x_fit, x_val]), x_tr) and torch.equal(torch.cat([y_fit, y_val]), y_tr)
