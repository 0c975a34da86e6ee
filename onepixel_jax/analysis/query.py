"""Batched model queries shared by the analyses (``probe``, ``corner_search``,
``open_questions``).

:func:`probabilities` evaluates many perturbations of many images in one
batched, compiled evaluation: the perturbed images are written on the device
(``perturb.apply``) chunk by chunk, so 8,192 perturbations of an image never
sit in memory as images at once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax import perturb
from onepixel_jax.attack import predict_fn


def probabilities(predict, images, perturbations, batch_size: int = 512, progress: bool = False) -> np.ndarray:
  """Class probabilities of every perturbed image, in one batched evaluation.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3].
    perturbations: int[N, S, k, 5] valid ``(x, y, r, g, b)`` tuples: S
      perturbations of each image (see ``perturb.to_perturbations``).
    batch_size: perturbed images per forward pass (the last chunk is padded,
      so the evaluation compiles once).
  Returns:
    float32[N, S, C]: ``probs[i, s]`` is the prediction on ``images[i]``
    with ``perturbations[i, s]`` written in.
  """
  images = np.asarray(images)
  pixels = np.asarray(perturbations, np.int32)
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(f"images must be uint8[N, H, W, 3], got {images.dtype}{list(images.shape)}")
  if pixels.ndim != 4 or pixels.shape[0] != images.shape[0] or pixels.shape[-1] != 5:
    raise ValueError(f"perturbations must be int[N, S, k, 5] for {images.shape[0]} images, got shape {pixels.shape}")
  n, s, k, _ = pixels.shape
  total = n * s
  if total == 0:
    return np.zeros((n, s, 0), np.float32)
  fn, params, _ = predict_fn(predict)
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
