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


# Classifiers the attack tests use: class 1 (or 2) is reached by recolouring pixel HOT.


def two_class(x):
  """True class 0 until pixel HOT turns red; P(class 1) rises smoothly with redness."""
  p1 = jax.nn.sigmoid(8.0 * redness(x) - 2.0)
  return jnp.stack([1 - p1, p1], axis=-1)


def two_class_numpy(x):
  """``two_class`` in NumPy: a host callable the attack cannot trace."""
  p = np.asarray(x)[:, HOT[1], HOT[0]].astype(np.float32) / 255.0
  r = p[:, 0] - 0.5 * p[:, 1] - 0.5 * p[:, 2]
  p1 = 1 / (1 + np.exp(-(8.0 * r - 2.0)))
  return np.stack([1 - p1, p1], axis=-1).astype(np.float32)


def three_class(x):
  """Class 2 is reached only by making HOT pure blue; class 0 is the clean label."""
  p = x[:, HOT[1], HOT[0]].astype(jnp.float32) / 255.0
  blue = p[:, 2] - 0.5 * p[:, 0] - 0.5 * p[:, 1]
  logits = jnp.stack([jnp.full_like(blue, 1.0), 0.2 * blue, 6.0 * blue], axis=-1)
  return jax.nn.softmax(logits, axis=-1)


def random_images(n=6, seed=0):
  """uint8[n, H, W, 3] random images whose pixel HOT is black (class 0 for ``two_class``)."""
  rng = np.random.default_rng(seed)
  im = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
  im[:, HOT[1], HOT[0]] = 0
  return im


def assert_same(a, b):
  """Two AttackResults are equal field by field."""
  for k, v in vars(a).items():
    np.testing.assert_array_equal(v, getattr(b, k), err_msg=k)


def record(success_gen, label=0, popsize=10, gens=4, target=None):
  """An attack record (all fields) whose best candidate first succeeds at
  generation ``success_gen`` (None: never) and that stops there."""
  hist = [label] * (gens + 1)
  stop = gens if success_gen is None else success_gen
  for g in range(stop + 1, gens + 1):
    hist[g] = -1
  if success_gen is not None:
    hist[success_gen] = label + 1 if target is None else target
  return {"id": 0, "label": label, "target": target, "success": success_gen is not None,
          "predicted": hist[stop], "adversarial_prob": 0.6, "true_prob": 0.4 if success_gen is None else 0.3,
          "target_prob": None if target is None else 0.5, "distortion": 100.0, "popsize": popsize,
          "predicted_history": hist, "fitness_history": [0.5] * (stop + 1) + [None] * (gens - stop),
          "queries": popsize * (stop + 1), "generations": stop, "perturbation": [[1, 1, 0, 0, 0]]}
