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
* :func:`classify`: clean probabilities, to keep the correctly classified
  images (the only ones the paper attacks).
"""

from __future__ import annotations

import numpy as np

from onepixel_jax.data import cifar10, imagenet, samples
from onepixel_jax.data.cifar10 import CIFAR10_CLASSES, default_tarball, load_cifar10
from onepixel_jax.data.samples import sha256_file

__all__ = ["load", "split_train_val", "NUM_VAL", "VAL_SEED", "draw", "draw_correct", "classify", "load_cifar10", "default_tarball", "CIFAR10_CLASSES", "sha256_file",
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


def draw(num_available: int, num_images: int | None, seed: int) -> np.ndarray:
  """int[num_images]: sorted dataset indices drawn at random with ``seed``; all if None."""
  if num_images is None:
    return np.arange(num_available)
  if num_images < 1:
    raise ValueError(f"num_images must be >= 1, got {num_images}")
  if num_images > num_available:
    raise ValueError(f"num_images={num_images} but the data has only {num_available} images")
  return np.sort(np.random.default_rng(seed).permutation(num_available)[:num_images])


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
  order = np.random.default_rng(seed).permutation(len(images))
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
