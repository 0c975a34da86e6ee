"""Pixel perturbations: encoding, sampling, rounding/clipping and application.

Names used throughout the package:

* ``pixels``: the count ``k`` of changed pixels (``AttackConfig.pixels``, the
  paper's ``d``).
* a *candidate*: what DE searches over, ``k`` tuples ``(x, y, r, g, b)``
  concatenated into ``float32[5k]`` (paper, Sec. III-A), ``x`` the column and
  ``y`` the row, 0-based.
* a *perturbation*: a candidate rounded and clipped into range,
  ``int32[..., k, 5]`` (``to_perturbations``), the form that is written into
  images (``apply``) and stored in attack records. An adversarial image is
  always uint8 and differs from the original in at most ``k`` pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Paper, Sec. IV: colours initialised from N(128, 127), then clipped.
COLOUR_MEAN = 128.0
COLOUR_STD = 127.0


def bounds(pixels: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
  """The search box of a candidate: float32[5k] lower and upper bounds."""
  lo = np.tile(np.array([0, 0, 0, 0, 0], np.float32), pixels)
  hi = np.tile(np.array([width - 1, height - 1, 255, 255, 255], np.float32), pixels)
  return lo, hi


def init_candidates(key: jax.Array, popsize: int, pixels: int, height: int, width: int) -> jax.Array:
  """The paper's initial population (Sec. IV): ``x, y`` uniform over the image's
  pixels (``U(1, 32)`` 1-based on CIFAR-10), ``r, g, b ~ N(128, 127)`` clipped
  to [0, 255].

  Returns:
    float32[popsize, 5 * pixels].
  """
  k_x, k_y, k_c = jax.random.split(key, 3)
  x = jax.random.randint(k_x, (popsize, pixels, 1), 0, width).astype(jnp.float32)
  y = jax.random.randint(k_y, (popsize, pixels, 1), 0, height).astype(jnp.float32)
  rgb = jnp.clip(COLOUR_MEAN + COLOUR_STD * jax.random.normal(k_c, (popsize, pixels, 3)), 0.0, 255.0)
  return jnp.concatenate([x, y, rgb], axis=-1).reshape(popsize, 5 * pixels)


def random_perturbations(keys: jax.Array, count: int, pixels: int, height: int, width: int) -> np.ndarray:
  """int32[N, count, pixels, 5]: ``count`` random perturbations per key
  (uint32[N, 2]), drawn as the paper's initial population (``init_candidates``),
  e.g. the random-search baseline of Table VII."""
  cand = jax.vmap(lambda k: init_candidates(k, count, pixels, height, width))(jnp.asarray(keys))
  return np.asarray(to_perturbations(cand, height, width))


def to_perturbations(candidates: jax.Array, height: int, width: int) -> jax.Array:
  """Rounds and clips candidates into valid perturbations.

  Args:
    candidates: float[..., 5k].
  Returns:
    int32[..., k, 5] as (x, y, r, g, b), with 0 <= x < width, 0 <= y < height,
    0 <= r, g, b <= 255.
  """
  c = jnp.asarray(candidates)
  c = c.reshape(c.shape[:-1] + (c.shape[-1] // 5, 5))
  hi = jnp.array([width - 1, height - 1, 255, 255, 255], jnp.float32)
  return jnp.clip(jnp.round(c), 0, hi).astype(jnp.int32)


def apply(images: jax.Array, perturbations: jax.Array) -> jax.Array:
  """Writes perturbations into images.

  Args:
    images: uint8[..., H, W, 3].
    perturbations: int[..., k, 5] valid (x, y, r, g, b) tuples (see
      ``to_perturbations``); the leading dimensions broadcast against the
      images' leading dimensions, e.g. images uint8[N, 1, H, W, 3] with
      perturbations int[N, P, k, 5] gives uint8[N, P, H, W, 3]. Where two
      tuples name the same pixel, the later one wins.
  Returns:
    uint8[..., H, W, 3].
  """
  images = jnp.asarray(images)
  perturbations = jnp.asarray(perturbations)
  height, width = images.shape[-3], images.shape[-2]
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  out = images
  for j in range(perturbations.shape[-2]):
    p = perturbations[..., j, :]
    hit = (rows == p[..., 1, None, None]) & (cols == p[..., 0, None, None])  # [..., H, W]
    colour = p[..., None, None, 2:5].astype(jnp.uint8)  # [..., 1, 1, 3]
    out = jnp.where(hit[..., None], colour, out)
  return out


def distortion(images: np.ndarray, perturbations: np.ndarray) -> np.ndarray:
  """Mean absolute change per colour channel over the changed pixel positions.

  Args:
    images: uint8[N, H, W, 3] originals; perturbations: int[N, k, 5].
  Returns:
    float64[N] (paper Table VI's "distortion in one channel").
  """
  images = np.asarray(images)
  perturbations = np.asarray(perturbations)
  adv = np.asarray(apply(images, perturbations)).astype(np.int32)
  n = images.shape[0]
  out = np.zeros(n)
  for i in range(n):  # host-side bookkeeping over finished attacks only
    pos = np.unique(perturbations[i, :, :2], axis=0)
    diff = np.abs(adv[i, pos[:, 1], pos[:, 0]] - images[i, pos[:, 1], pos[:, 0]].astype(np.int32))
    out[i] = diff.mean()
  return out


def to_pixels(candidates, height: int, width: int):
  """Deprecated name of ``to_perturbations`` (until the next release)."""
  import warnings
  warnings.warn("perturb.to_pixels is deprecated; use perturb.to_perturbations", DeprecationWarning, 2)
  return to_perturbations(candidates, height, width)
