"""The offline sample images: foolbox's wheel ships 20 lossless CIFAR-10 test
images (``foolbox/data/cifar10_NN_LABEL.png``) and 20 ImageNet validation
images (``imagenet_NN_LABEL.jpg``); they are found without importing foolbox.

Also the two file helpers the loaders share: image decoding and sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import pathlib
import re
from typing import Callable

import numpy as np


def samples_dir() -> pathlib.Path:
  """The folder of foolbox's sample images."""
  spec = importlib.util.find_spec("foolbox")
  if spec is None or not spec.submodule_search_locations:
    raise ValueError("the 'samples' source needs the foolbox package "
                     "(pip install foolbox==3.3.4), which ships the images")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "data"


def load(pattern: re.Pattern, decode: Callable[[bytes], np.ndarray]):
  """``(uint8[N, H, W, 3], int32[N])``: the sample files whose names match
  ``pattern`` (groups: file index, label), decoded, in file-index order."""
  d = samples_dir()
  found = sorted((int(m.group(1)), int(m.group(2)), f) for f in d.iterdir() if (m := pattern.match(f.name)))
  if not found:
    raise ValueError(f"no files matching {pattern.pattern} in {d}")
  images = np.stack([decode(f.read_bytes()) for _, _, f in found])
  return images, np.asarray([lab for _, lab, _ in found], np.int32)


def decode(data: bytes) -> np.ndarray:
  """Image file bytes -> uint8[H, W, 3] RGB."""
  from PIL import Image
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def sha256_file(path) -> str:
  """The sha256 hex digest of a file, read in 1 MiB chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()
