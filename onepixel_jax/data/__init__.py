"""Images and labels for a model, and the paper's seeded draw of them.

* :func:`load` ``(source, split, model)``: the model's dataset at the model's
  input size, ``(images uint8[N, H, W, 3], labels int32[N])``: CIFAR-10
  (:mod:`onepixel_jax.data.cifar10`) for 10-class models, ImageNet-1k
  (:mod:`onepixel_jax.data.imagenet`, resized and centre-cropped) for
  1000-class ones. ``source`` is ``"samples"`` (:mod:`onepixel_jax.data.samples`,
  offline), ``"tfds"`` or a path.
* :func:`split_train_val`: the held-out validation images of a training split
  (``NUM_VAL`` images, seed ``VAL_SEED``: what the bundled CIFAR-10 networks
  were validated on and never trained on; ``load(..., "val", ...)``).
* :func:`draw`: the paper's protocol draws images at random (fixed seed).
* :func:`draw_subset_members`: a CIFAR-10 tarball cut down to the images a
  seeded draw reaches, to carry a run to a machine with little upload room.
* :func:`classify`: clean probabilities, to keep the correctly classified
  images (the only ones the paper attacks).
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

from onepixel_jax.data import cifar10, imagenet, samples
from onepixel_jax.data.cifar10 import CIFAR10_CLASSES, default_tarball, load_cifar10
from onepixel_jax.data.samples import sha256_file

__all__ = ["load", "split_train_val", "NUM_VAL", "VAL_SEED", "draw", "draw_order", "draw_correct",
           "draw_subset_members", "classify", "load_cifar10", "default_tarball", "CIFAR10_CLASSES", "sha256_file",
           "cifar10", "imagenet", "samples"]


# The held-out validation split of CIFAR-10's training split (train.default_config's num_val, val_seed).
NUM_VAL = 5000
VAL_SEED = 0


def split_train_val(images, labels, num_val: int = NUM_VAL, seed: int = VAL_SEED):
  """Deterministic held-out validation split from the *training* set:
  ``((train images, labels), (val images, labels))``, the training part in
  dataset order, the validation part in the seeded order."""
  perm = np.random.default_rng(seed).permutation(len(labels))
  val, tr = perm[:num_val], np.sort(perm[num_val:])
  return (images[tr], labels[tr]), (images[val], labels[val])


def load(source, split: str, model):
  """``(images, labels)`` of the dataset ``model`` classifies, at its input size.

  Args:
    source: "samples", "tfds", or a path (folder or tarball).
    split: "test" (ImageNet: its validation split), "train", or (CIFAR-10)
      "val": the training split's ``NUM_VAL`` held-out validation images
      (:func:`split_train_val`), where a method's settings are chosen.
    model: a loaded model (``num_classes``, ``input_size``, ``name``).
  Raises:
    ValueError with one line: no dataset for the model's classes, images of
    another size than the model takes, or a bad source.
  """
  if split == "val" and model.num_classes != 10:
    raise ValueError(f"split 'val' (held-out training images) is defined for CIFAR-10 only, not {model.name!r}")
  if model.num_classes == 10:
    images, labels = cifar10.load(source, "train" if split == "val" else split)
    if split == "val":
      _, (images, labels) = split_train_val(images, labels)
  elif model.num_classes == imagenet.NUM_CLASSES:
    images, labels = imagenet.load(source, split, tuple(model.input_size))
  else:
    raise ValueError(f"no dataset loader for model {model.name!r} with {model.num_classes} classes")
  if tuple(images.shape[1:3]) != tuple(model.input_size):
    raise ValueError(f"the data's images are {tuple(images.shape[1:3])} but {model.name} expects "
                     f"{tuple(model.input_size)}")
  return images, labels


def draw_order(num_available: int, seed: int) -> np.ndarray:
  """int[num_available]: the seeded random order of the dataset's indices
  that :func:`draw` and :func:`draw_correct` take their images from."""
  return np.random.default_rng(seed).permutation(num_available)


def draw(num_available: int, num_images: int | None, seed: int) -> np.ndarray:
  """int[num_images]: sorted dataset indices drawn at random with ``seed``; all if None."""
  if num_images is None:
    return np.arange(num_available)
  if num_images < 1:
    raise ValueError(f"num_images must be >= 1, got {num_images}")
  if num_images > num_available:
    raise ValueError(f"num_images={num_images} but the data has only {num_available} images")
  return np.sort(draw_order(num_available, seed)[:num_images])


def draw_correct(model, images, labels, num_correct: int, seed: int,
                 batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
  """The first ``num_correct`` correctly classified images of the seeded random
  order that :func:`draw` takes its images from (so the same images for every
  table of a network, and a smaller count takes a prefix of a larger one).

  Returns ``(ids, probs)``: the sorted indices of every image examined up to
  the ``num_correct``-th correct one, and their clean probabilities
  float32[len(ids), C]. Classifies ``batch`` images at a time, only as many
  as needed.
  """
  if num_correct < 1:
    raise ValueError(f"num_correct must be >= 1, got {num_correct}")
  order = draw_order(len(images), seed)
  seen, probs, found = [], [], 0
  for s in range(0, len(order), batch):
    chunk = order[s:s + batch]
    p = classify(model, images[chunk])
    ok = np.flatnonzero(p.argmax(1) == labels[chunk])
    if found + len(ok) >= num_correct:
      stop = ok[num_correct - found - 1] + 1
      seen.append(chunk[:stop])
      probs.append(p[:stop])
      found = num_correct
      break
    seen.append(chunk)
    probs.append(p)
    found += len(ok)
  if found < num_correct:
    raise ValueError(f"only {found} of the {len(images)} images are classified correctly; "
                     f"{num_correct} were asked for")
  ids, probs = np.concatenate(seen), np.concatenate(probs)
  keep = np.argsort(ids)
  return ids[keep], probs[keep]


def classify(model, images, batch: int = 500) -> np.ndarray:
  """float32[N, C] clean probabilities of uint8[N, H, W, 3] images, ``batch`` at a time.

  ``model``: a loaded model (its ``predict``) or any ``images -> probabilities`` callable.
  """
  predict = getattr(model, "predict", model)
  if not len(images):
    return np.zeros((0, getattr(model, "num_classes", 0)), np.float32)
  return np.concatenate([np.asarray(predict(images[i:i + batch])) for i in range(0, len(images), batch)])


# Stands in for every image a subset leaves out: one mid-grey image, encoded once.
PLACEHOLDER_GREY = 128


def draw_subset_members(path, keep: int, seed: int, split: str = "test") -> list[tuple[str, bytes]]:
  """A CIFAR-10 tarball's ``split`` cut down to what a seeded draw can reach.

  The ``keep`` first images of :func:`draw_order` ``(N, seed)`` keep their
  bytes; every other image becomes one constant grey image of the same size.
  Loaded, the result has the original's length, order and labels, so a run
  that examines at most ``keep`` images of that order (:func:`draw`,
  :func:`draw_correct`; the paper presets) attacks exactly the same images.
  Made to carry a run to a machine with little upload room: the test split
  at ``keep=200`` is 0.2 MB against the archive's 19 MB.

  Args:
    path: a CIFAR-10 tarball (``<split>/<class>/<file>`` members).
    keep: how many images of the seeded order keep their own bytes, >= 1.
    seed: the draw's seed (the presets' ``seed``).
    split: the split to keep ("test"); other splits are left out.
  Returns:
    ``[(member name, bytes)]`` in the loader's order, names
    ``<split>/<class>/<file>``.
  Raises:
    ValueError with one line: not a tarball, unreadable, or ``keep`` out of
    range.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"{path} is not a CIFAR-10 tarball")
  items = cifar10.tarball_items(path, split)
  if not 1 <= keep <= len(items):
    raise ValueError(f"keep must be between 1 and the split's {len(items)} images, got {keep}")
  kept = set(draw_order(len(items), seed)[:keep].tolist())
  h, w = samples.decode(items[0][2]).shape[:2]
  buf = io.BytesIO()
  Image.new("RGB", (w, h), (PLACEHOLDER_GREY,) * 3).save(buf, format="PNG")
  grey = buf.getvalue()
  return [(f"{split}/{cifar10.CLASSES[c]}/{name}", b if i in kept else grey)
          for i, (c, name, b) in enumerate(items)]
