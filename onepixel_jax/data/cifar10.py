"""CIFAR-10 loaders. Every loader returns ``(images, labels)``:
``images: uint8[N, 32, 32, 3]`` (RGB) and ``labels: int32[N]``.

Sources (one entry point, :func:`load`; ``onepixel_jax.data.load`` picks it
for a 10-class model):

- ``"samples"``: the 20 lossless CIFAR-10 test images (the first 20 of the
  original test set) that the ``foolbox`` wheel ships as
  ``foolbox/data/cifar10_NN_LABEL.png``; found without importing foolbox.
- ``"tfds"``: TensorFlow Datasets ``cifar10`` (needs ``tensorflow-datasets``,
  imported lazily; downloads on first use).
- a path: an image-folder tree ``<root>/<split>/<class>/*.jpg|png`` or its
  ``.tar.gz`` (the layout of ``../shared/data/cifar10-jpeg.tar.gz``). Images
  are returned **class-major** (classes in :data:`CLASSES` order, then
  files sorted by name), which for that tarball keeps the original test-set
  order within each class. Decoded arrays are cached as ``.npz`` under
  ``$ONEPIXEL_CACHE`` (default ``~/.cache/onepixel_jax``), keyed by the
  archive's sha256, because decoding 60k JPEGs takes ~20 s.

The data location is never hard-coded: :func:`default_tarball` reads
``$ONEPIXEL_CIFAR10`` and falls back to ``<repo>/../shared/data/cifar10-jpeg.tar.gz``.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import tarfile
import tempfile

import numpy as np

from onepixel_jax.data import samples
from onepixel_jax.data.samples import decode as _decode
from onepixel_jax.data.samples import sha256_file

# The ten CIFAR-10 class names, index = label (the one copy in the package).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog",
           "frog", "horse", "ship", "truck")
CIFAR10_CLASSES = CLASSES

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")
_SAMPLE_RE = re.compile(r"^cifar10_(\d+)_(\d+)\.png$")


def default_tarball() -> pathlib.Path:
  """``$ONEPIXEL_CIFAR10`` or ``<repo root>/../shared/data/cifar10-jpeg.tar.gz``."""
  env = os.environ.get("ONEPIXEL_CIFAR10")
  if env:
    return pathlib.Path(env).expanduser()
  repo = pathlib.Path(__file__).resolve().parents[2]
  return repo.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get("ONEPIXEL_CACHE",
                                     pathlib.Path.home() / ".cache" / "onepixel_jax"))


def _stack(items, path) -> tuple[np.ndarray, np.ndarray]:
  """items: list of (class_index, name, bytes) -> class-major arrays."""
  if not items:
    raise ValueError(f"no images found in {path}")
  items.sort(key=lambda t: (t[0], t[1]))
  images = np.stack([_decode(b) for _, _, b in items])
  labels = np.asarray([c for c, _, _ in items], np.int32)
  return images, labels


def _class_index(name: str, path) -> int:
  try:
    return CLASSES.index(name)
  except ValueError:
    raise ValueError(f"unknown class folder {name!r} in {path}; expected one of "
                     f"{', '.join(CLASSES)}") from None


def _split_members(parts: list[str], split: str):
  """Finds '<split>/<class>/<file>' at the end of a member path."""
  if len(parts) >= 3 and parts[-3] == split:
    return parts[-2], parts[-1]
  return None


def tarball_items(path: pathlib.Path, split: str) -> list[tuple[int, str, bytes]]:
  """``[(label, file name, encoded bytes)]`` of a tarball's ``split``, in the
  loader's order (class-major, then file name): item ``i`` is image ``i``."""
  items = []
  try:
    with tarfile.open(path, "r:*") as tar:
      for m in tar:
        if not m.isfile() or not m.name.lower().endswith(_IMAGE_EXT):
          continue
        hit = _split_members(m.name.split("/"), split)
        if hit is None:
          continue
        cls, fname = hit
        items.append((_class_index(cls, path), fname, tar.extractfile(m).read()))
  except (tarfile.TarError, EOFError, OSError) as e:
    raise ValueError(f"cannot read CIFAR-10 archive {path}: {e}") from None
  return sorted(items, key=lambda t: (t[0], t[1]))


def _read_tarball(path: pathlib.Path, split: str):
  return _stack(tarball_items(path, split), f"{path} (split {split!r})")


def _read_folder(path: pathlib.Path, split: str):
  root = path / split
  if not root.is_dir():
    raise ValueError(f"no {split!r} folder in {path}")
  items = []
  for cdir in root.iterdir():
    if not cdir.is_dir():
      continue
    c = _class_index(cdir.name, path)
    for f in cdir.iterdir():
      if f.suffix.lower() in _IMAGE_EXT:
        items.append((c, f.name, f.read_bytes()))
  return _stack(items, root)


def load_image_folder(path, split: str = "test", use_cache: bool = True):
  """CIFAR-10 from an image-folder tree or its .tar(.gz); see module docstring."""
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise FileNotFoundError(
        f"CIFAR-10 data not found at {path}; set ONEPIXEL_CIFAR10 or pass a path")
  if path.is_dir():
    return _read_folder(path, split)
  cache = None
  if use_cache:
    cache = cache_dir() / f"cifar10-{sha256_file(path)[:16]}-{split}.npz"
    if cache.is_file():
      try:
        with np.load(cache) as z:
          return z["images"], z["labels"].astype(np.int32)
      except Exception:  # a broken cache is rebuilt
        pass
  images, labels = _read_tarball(path, split)
  if cache is not None:
    try:
      cache.parent.mkdir(parents=True, exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz")
      with os.fdopen(fd, "wb") as f:
        np.savez(f, images=images, labels=labels)
      os.replace(tmp, cache)
    except OSError:
      pass  # caching is an optimisation only
  return images, labels


def load_samples():
  """The 20 lossless CIFAR-10 test images shipped in foolbox's wheel,
  in original test-set order (file index NN)."""
  return samples.load(_SAMPLE_RE, _decode)


def load_tfds(split: str = "test", data_dir=None):
  """CIFAR-10 through TensorFlow Datasets (lazy import; may download).

  With TensorFlow installed this uses ``tfds.load``; without it,
  ``tfds.data_source`` (array_record random access, no TensorFlow needed).
  """
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise ValueError("the 'tfds' source needs tensorflow-datasets "
                     "(pip install tensorflow-datasets)") from None
  if importlib.util.find_spec("tensorflow") is not None:
    ds = tfds.load("cifar10", split=split, batch_size=-1, as_supervised=True,
                   data_dir=data_dir)
    images, labels = tfds.as_numpy(ds)
  else:
    source = tfds.data_source("cifar10", split=split, data_dir=data_dir)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([e["image"] for e in examples])
    labels = np.asarray([e["label"] for e in examples])
  return np.asarray(images, np.uint8), np.asarray(labels, np.int32)


def load(source="samples", split: str = "test"):
  """``(uint8[N, 32, 32, 3], int32[N])`` from "samples" | "tfds" | a path."""
  if split not in ("train", "test"):
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")
  if source == "samples":
    if split != "test":
      raise ValueError("the 'samples' source holds test images only")
    return load_samples()
  if source == "tfds":
    return load_tfds(split)
  return load_image_folder(source, split)


load_cifar10 = load  # the name the README's library example uses
