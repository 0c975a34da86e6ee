"""Model queries shared by the analyses (``onepixel_jax.probe``, ``corner``, ``openq``).

* :func:`probabilities` evaluates many pixel perturbations of many images in
  one batched, compiled evaluation: the perturbed images are written on the
  device (``perturb.apply``) chunk by chunk, so 8,192 perturbations of an image
  never sit in memory as images at once.
* :func:`load_inputs` loads a model and a seeded draw of images as the main job
  does (``experiment.draw``) and keeps the correctly classified ones: the
  images the paper attacks.
* :func:`run_attacks` runs DE attacks and appends their records to a JSONL file
  in the main job's format, so every analysis's attacks can be read back (and
  probed) like ``experiments.attack``'s ``results.jsonl``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax import perturb, results
from onepixel_jax.attack import AttackConfig, AttackResult, attack_iter


def predict_fn(predict) -> tuple[Callable[[Any, jax.Array], jax.Array], Any]:
  """``(fn, params)`` with ``fn(params, uint8[n, H, W, 3]) -> float[n, C]`` jittable.

  ``predict`` is a loaded ``onepixel_jax.models`` model (``.apply`` and
  ``.variables``) or a jittable function of uint8 images.
  """
  if hasattr(predict, "apply") and hasattr(predict, "variables"):
    return (lambda p, x: predict.apply(p, x)), predict.variables
  if callable(predict):
    return (lambda p, x: predict(x)), None
  raise ValueError(f"predict must be a loaded model or a jittable function of uint8 images, got {type(predict).__name__}")


def probabilities(predict, images, pixels, batch_size: int = 512, progress: bool = False) -> np.ndarray:
  """Class probabilities of every perturbed image, in one batched evaluation.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3].
    pixels: int[N, S, k, 5] valid ``(x, y, r, g, b)`` tuples: S perturbations
      of each image (see ``perturb.to_pixels``).
    batch_size: perturbed images per forward pass (the last chunk is padded,
      so the evaluation compiles once).
  Returns:
    float32[N, S, C]: ``probs[i, s]`` is the prediction on ``images[i]``
    with ``pixels[i, s]`` written in.
  """
  images = np.asarray(images)
  pixels = np.asarray(pixels, np.int32)
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(f"images must be uint8[N, H, W, 3], got {images.dtype}{list(images.shape)}")
  if pixels.ndim != 4 or pixels.shape[0] != images.shape[0] or pixels.shape[-1] != 5:
    raise ValueError(f"pixels must be int[N, S, k, 5] for {images.shape[0]} images, got shape {pixels.shape}")
  n, s, k, _ = pixels.shape
  total = n * s
  if total == 0:
    return np.zeros((n, s, 0), np.float32)
  fn, params = predict_fn(predict)
  b = int(min(batch_size, total))
  chunks = math.ceil(total / b)
  image_of = np.repeat(np.arange(n, dtype=np.int32), s)
  flat = pixels.reshape(total, k, 5)
  pad = chunks * b - total
  image_of = np.concatenate([image_of, np.zeros(pad, np.int32)])
  flat = np.concatenate([flat, np.repeat(flat[:1], pad, axis=0)])

  @jax.jit
  def chunk(params, imgs, idx, pix):
    return fn(params, perturb.apply(imgs[idx], pix)).astype(jnp.float32)

  dev_images = jnp.asarray(images)
  out = []
  bar = None
  if progress:
    from tqdm.auto import tqdm
    bar = tqdm(total=total, unit="query", smoothing=0.1)
  pending = None
  for c in range(chunks):  # dispatch chunk c before fetching chunk c - 1
    nxt = chunk(params, dev_images, jnp.asarray(image_of[c * b:(c + 1) * b]), jnp.asarray(flat[c * b:(c + 1) * b]))
    if pending is not None:
      out.append(np.asarray(pending))
      if bar is not None:
        bar.update(b)
    pending = nxt
  out.append(np.asarray(pending))
  if bar is not None:
    bar.update(total - (chunks - 1) * b)
    bar.close()
  probs = np.concatenate(out)[:total]
  return probs.reshape(n, s, probs.shape[-1])


def clean_probabilities(predict, images, batch_size: int = 512) -> np.ndarray:
  """float32[N, C] on the unperturbed images."""
  images = np.asarray(images)
  # Writing a pixel's own colour back leaves the image unchanged.
  own = np.concatenate([np.zeros((len(images), 2), np.int32), images[:, 0, 0].astype(np.int32)], axis=1)
  return probabilities(predict, images, own[:, None, None, :], batch_size)[:, 0]


@dataclasses.dataclass(frozen=True)
class Inputs:
  """The images an analysis works on: correctly classified ones of a seeded draw.

  Attributes:
    model: the loaded model.
    images: uint8[N, H, W, 3]; labels: int[N]; ids: int[N] dataset indices
      (the ``id`` of attack records); clean: float32[N, C] clean probabilities.
    num_drawn: images drawn before keeping the correctly classified ones.
    data: the data source; all_images, all_labels: the whole split (attack
      records from ``--results`` index it by ``id``).
  """

  model: Any
  images: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  clean: np.ndarray
  num_drawn: int
  data: str
  all_images: np.ndarray
  all_labels: np.ndarray

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self.model.class_names)

  def describe(self) -> dict:
    return {"model": self.model.name, "data": self.data, "num_images_drawn": self.num_drawn,
            "num_images": int(len(self.ids)), "ids": self.ids.tolist()}


def load_inputs(model: str, checkpoint: str | None, data: str, num_images: int | None, seed: int = 0,
                split: str = "test") -> Inputs:
  """Loads a model and draws images exactly as the main job (``experiment.run``) does.

  Raises:
    ValueError / FileNotFoundError with one line (bad model, checkpoint, data).
  """
  from onepixel_jax import experiment

  m = experiment.load_model(model, checkpoint)
  images, labels = experiment.load_data(data, split, m)
  ids = experiment.draw(len(images), num_images, seed)
  clean = clean_probabilities(m, images[ids])
  keep = clean.argmax(1) == labels[ids]
  return Inputs(m, images[ids[keep]], labels[ids[keep]].astype(np.int64), ids[keep], clean[keep], len(ids), data,
                images, labels)


def run_attacks(predict, images, labels, targets, config: AttackConfig, path: str | None, *, ids=None, seed: int = 0,
                batch_size: int | None = None, extra: dict | None = None, progress: bool = False) -> AttackResult:
  """Runs DE attacks; appends each record (plus ``extra`` fields) to ``path`` as it finishes.

  Returns the AttackResult in input order. ``path=None`` writes nothing.
  """
  n = len(labels)
  recs = []
  for r in attack_iter(predict, images, labels, targets, config, seed, batch_size, ids=ids, progress=progress):
    recs.append(r)
    if path is not None:
      out = {k: v for k, v in r.items() if k != "index"}
      out.update(extra or {})
      results.append(path, [out])
  recs.sort(key=lambda r: r["index"])
  assert len(recs) == n
  return AttackResult.from_records(recs) if recs else None


def fresh_file(path: str) -> str:
  """Removes ``path`` if it exists (an analysis rewrites its outputs) and makes its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if os.path.exists(path):
    os.remove(path)
  return path
