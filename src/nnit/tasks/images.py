"""Image classification tasks: MLP classifiers on MNIST-format (IDX) data.

* **Data.** Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``) by
  default; MNIST (no Debian package ships it) from a folder the user points at. File names are
  looked up in the usual spellings (``t10k-images-idx3-ubyte``, ``t10k-images.idx3-ubyte``, with or
  without ``.gz``).
* **Inputs.** Pixels scaled to [0, 1] (``/ 255``, no mean subtraction), then average-pooled by
  ``downsample`` (default 4: 28x28 -> 7x7 = 49 inputs, because the weight generators' token grid
  holds layers up to 64 wide; see :data:`nnit.tasks.registry.DEFAULT_DOWNSAMPLE`), flattened
  row-major.
* **Metric.** Top-1 accuracy and mean cross-entropy of the logits on the test split, for all N
  networks in one batched forward (:func:`classify`; the harness's
  :func:`nnit.eval.harness.evaluate_image_task` wraps it into an evaluation result).

Files are parsed by hand (the IDX header is 4 bytes of magic + one 4-byte size per dimension); no pickle.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from nnit.tasks.registry import ImageTaskSpec, TaskError, get_task
from nnit.weights.mlp import WeightSet

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX type codes (byte 3 of the magic) -> numpy dtypes (big-endian)."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its stated shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise TaskError(f"cannot read IDX file {path}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise TaskError(f"{path} is not an IDX file (bad magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    count = int(np.prod(shape)) if shape else 0
    if len(data) - header != count * dtype.itemsize:
        raise TaskError(f"{path}: header says shape {shape} ({count * dtype.itemsize} bytes) but the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header, count=count).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz); used for test fixtures."""
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


def find_split_files(data_dir: str | os.PathLike, split: str = "test") -> tuple[Path, Path]:
    """(images, labels) IDX files of ``split`` (``train`` or ``test``) inside ``data_dir``."""
    if split not in ("train", "test"):
        raise TaskError(f"split must be 'train' or 'test', got {split!r}")
    d = Path(data_dir)
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind, idx in (("images", "idx3"), ("labels", "idx1")):
        names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
        cands = [d / (n + gz) for n in names for gz in ("", ".gz")]
        hit = next((c for c in cands if c.is_file()), None)
        if hit is None:
            raise TaskError(f"no {split} {kind} file in {d} (looked for {', '.join(c.name for c in cands)})")
        found.append(hit)
    return found[0], found[1]


def pool_images(images: np.ndarray, downsample: int) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, (28/d)^2) float32 in [0, 1]: scale, average-pool d x d, flatten."""
    n, h, w = images.shape
    if h % downsample or w % downsample:
        raise TaskError(f"downsample {downsample} does not divide the image size {h}x{w}")
    x = images.astype(np.float32) / 255.0
    x = x.reshape(n, h // downsample, downsample, w // downsample, downsample).mean(axis=(2, 4))
    return x.reshape(n, -1)


VALIDATION_SIZE = 5000
"""The last 5,000 training images form the ``val`` split (dataset filtering, model selection);
``fit`` is the rest of the training set (what generators and SGD baselines train on). The test
split is used only for reported results."""


def load_split(task: ImageTaskSpec | str, split: str = "test", data_dir: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, input_dim) float32, y (n,) int64) of a split, pooled as the task says.

    ``split``: ``train`` (all 60k), ``fit`` (train minus the last :data:`VALIDATION_SIZE`),
    ``val`` (those last images) or ``test``."""
    if split in ("fit", "val"):
        x, y = load_split(task, "train", data_dir)
        cut = len(y) - VALIDATION_SIZE
        if cut <= 0:
            raise TaskError(f"the training split has {len(y)} images, too few for a {VALIDATION_SIZE}-image validation split")
        return (x[:cut], y[:cut]) if split == "fit" else (x[cut:], y[cut:])
    spec = get_task(task)
    if not isinstance(spec, ImageTaskSpec):
        raise TaskError(f"{spec.name} is not an image task")
    d = data_dir or spec.default_dir
    if d is None:
        raise TaskError(f"task {spec.name} needs --data-dir: a folder with its IDX files (no copy ships with the system)")
    img_path, lab_path = find_split_files(d, split)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise TaskError(f"{img_path} / {lab_path}: expected (n, 28, 28) images and (n,) labels, got {images.shape} and {labels.shape}")
    x = torch.from_numpy(pool_images(images, spec.downsample))
    y = torch.from_numpy(labels.astype(np.int64))
    if int(y.max()) >= spec.num_classes or int(y.min()) < 0:
        raise TaskError(f"{lab_path}: labels outside 0..{spec.num_classes - 1}")
    return x, y


def classify(ws: WeightSet, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-network (accuracy (N,), mean cross-entropy (N,)) of all N networks on (x, y)."""
    correct = torch.zeros(ws.n, dtype=torch.float64)
    loss = torch.zeros(ws.n, dtype=torch.float64)
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            xb, yb = x[lo : lo + batch], y[lo : lo + batch]
            logits = ws(xb)  # (N, B, classes)
            correct += (logits.argmax(-1) == yb).sum(1).double()
            ce = F.cross_entropy(logits.flatten(0, 1), yb.repeat(ws.n), reduction="none")  # (N*B,)
            loss += ce.view(ws.n, -1).sum(1).double()
    return correct / len(x), loss / len(x)
