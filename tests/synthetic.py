"""Tiny jittable classifiers of uint8 images with known decision boundaries (for the analysis tests)."""

import jax
import jax.numpy as jnp
import numpy as np

H = W = 8
HOT = (5, 3)  # (x = column, y = row) of the pixel the classifiers watch
SLOPE, OFFSET = 10.0, 4.0  # class 1 wins when redness > OFFSET / SLOPE = 0.4


def redness(x, col=HOT[0], row=HOT[1]):
  p = x[:, row, col].astype(jnp.float32) / 255.0
  return p[:, 0] - 0.5 * p[:, 1] - 0.5 * p[:, 2]


def red_pixel(x):
  """Three classes; class 1's logit rises with the redness of pixel HOT, class 2's with
  the blueness of pixel (0, 0); the clean label (all-grey images) is 0."""
  p = x[:, 0, 0].astype(jnp.float32) / 255.0
  blue = p[:, 2] - 0.5 * p[:, 0] - 0.5 * p[:, 1]
  logits = jnp.stack([jnp.zeros_like(blue), SLOPE * redness(x) - OFFSET, SLOPE * blue - OFFSET], axis=-1)
  return jax.nn.softmax(logits, axis=-1)


def red_strip(x):
  """Two classes; class 1 when any pixel of the strip row HOT[1], columns HOT[0]-1..HOT[0]+1 is red."""
  r = jnp.max(jnp.stack([redness(x, HOT[0] + d) for d in (-1, 0, 1)]), axis=0)
  logits = jnp.stack([jnp.zeros_like(r), SLOPE * r - OFFSET], axis=-1)
  return jax.nn.softmax(logits, axis=-1)


def grey_images(n=3, value=128):
  return np.full((n, H, W, 3), value, np.uint8)


def noisy_images(n=3, seed=0):
  rng = np.random.default_rng(seed)
  im = rng.integers(60, 200, (n, H, W, 3), dtype=np.uint8)
  im[:, HOT[1], HOT[0]] = 128
  im[:, 0, 0] = 128
  return im
