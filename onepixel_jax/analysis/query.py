"""Batched model queries shared by the analyses (``probe``, ``corner_search``,
``open_questions``).

:func:`probabilities` evaluates many perturbations of many images in one
batched, compiled evaluation: through the model's incremental inference
where it has one (only the windows the changed pixels reach are recomputed,
as in the attack), else with the perturbed images written on the device
(``perturb.apply``) chunk by chunk, so 8,192 perturbations of an image never
sit in memory as images at once.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from onepixel_jax import compiler, perturb
from onepixel_jax.attack import compiler_kind, predict_fn
from onepixel_jax.models import incremental


def probabilities(predict, images, perturbations, batch_size: int | None = None, progress: bool = False,
                  incremental: bool = True) -> np.ndarray:
  """Class probabilities of every perturbed image, in one batched evaluation.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3].
    perturbations: int[N, S, k, 5] valid ``(x, y, r, g, b)`` tuples: S
      perturbations of each image (see ``perturb.to_perturbations``).
    batch_size: perturbed images per forward pass (the last chunk is padded,
      so the evaluation compiles once); default 512, or 4,096 on the
      incremental path (as the attack sizes its passes).
    incremental: evaluate through the model's incremental inference
      (``apply_incremental``: only the windows the changed pixels reach are
      recomputed) where it has one, as the attack does; equal to the dense
      evaluation to float tolerance.
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
  if n * s == 0:
    return np.zeros((n, s, 0), np.float32)
  fn, params, incremental_fn = predict_fn(predict, incremental)
  if incremental_fn is not None:
    kind = compiler_kind(predict, incremental_fn, k)
    chunk = _compiled(predict, kind, lambda: compiler.jit(
        lambda params, clean, pix: incremental_fn(params, clean, pix).astype(jnp.float32), kind))
    return _incremental(chunk, params, images, pixels, batch_size or 4096, progress)
  chunk = _compiled(predict, "dense", lambda: compiler.jit(
      lambda params, imgs, idx, pix: fn(params, perturb.apply(imgs[idx], pix)).astype(jnp.float32), "dense"))
  return _dense(chunk, params, images, pixels, batch_size or 512, progress)


def _compiled(predict, kind: str, make):
  """A model queried again (an analysis calls ``probabilities`` once per image)
  reuses its compilation (:func:`compiler.cached`)."""
  return compiler.cached(predict, kind, incremental.SHORTCUTS, make)


def _bar(progress: bool, total: int):
  if not progress:
    return None
  from tqdm.auto import tqdm
  return tqdm(total=total, unit="query", smoothing=0.1)


def _pipelined(calls, bar, sizes):
  """Runs the dispatching ``calls`` one ahead of fetching their results."""
  out, pending = [], None
  for call, size in zip(calls, sizes):
    nxt = call()
    if pending is not None:
      out.append(np.asarray(pending[0]))
      if bar is not None:
        bar.update(pending[1])
    pending = (nxt, size)
  out.append(np.asarray(pending[0]))
  if bar is not None:
    bar.update(pending[1])
    bar.close()
  return out


def _dense(chunk, params, images, pixels, batch_size, progress):
  """Every perturbation written into its image and the whole network run
  (``chunk(params, images, image index[b], pixels[b, k, 5])``), ``batch_size``
  perturbed images per pass."""
  n, s, k, _ = pixels.shape
  total = n * s
  b = int(min(batch_size, total))
  chunks = math.ceil(total / b)
  image_of = np.repeat(np.arange(n, dtype=np.int32), s)
  flat = pixels.reshape(total, k, 5)
  pad = chunks * b - total
  image_of = np.concatenate([image_of, np.zeros(pad, np.int32)])
  flat = np.concatenate([flat, np.repeat(flat[:1], pad, axis=0)])

  dev_images = jnp.asarray(images)
  calls = [lambda c=c: chunk(params, dev_images, jnp.asarray(image_of[c * b:(c + 1) * b]),
                             jnp.asarray(flat[c * b:(c + 1) * b])) for c in range(chunks)]
  sizes = [b] * (chunks - 1) + [total - (chunks - 1) * b]
  probs = np.concatenate(_pipelined(calls, _bar(progress, total), sizes))[:total]
  return probs.reshape(n, s, probs.shape[-1])


def _incremental(chunk, params, images, pixels, batch_size, progress):
  """Blocks of ``B`` images x ``P`` perturbations (``B * P`` about
  ``batch_size``) through the model's incremental inference
  (``chunk(params, clean[B], pixels[B, P, k, 5])``); the last blocks are
  padded with repeats, so it compiles once."""
  n, s, k, _ = pixels.shape
  p = int(min(s, batch_size))
  b = int(max(1, min(n, batch_size // p)))
  n_pad, s_pad = math.ceil(n / b) * b, math.ceil(s / p) * p
  imgs = np.concatenate([images, np.repeat(images[:1], n_pad - n, axis=0)])
  pix = np.concatenate([pixels, np.repeat(pixels[:, :1], s_pad - s, axis=1)], axis=1)
  pix = np.concatenate([pix, np.repeat(pix[:1], n_pad - n, axis=0)])
  blocks = [(i, j) for i in range(0, n_pad, b) for j in range(0, s_pad, p)]
  calls = [lambda i=i, j=j: chunk(params, jnp.asarray(imgs[i:i + b]), jnp.asarray(pix[i:i + b, j:j + p]))
           for i, j in blocks]
  sizes = [min(b, n - i) * min(p, s - j) for i, j in blocks]
  out = _pipelined(calls, _bar(progress, n * s), sizes)
  probs = np.zeros((n_pad, s_pad, out[0].shape[-1]), np.float32)
  for (i, j), o in zip(blocks, out):
    probs[i:i + b, j:j + p] = o
  return probs[:n, :s]
