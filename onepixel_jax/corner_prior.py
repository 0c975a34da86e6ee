"""A learned prior over one-pixel corner candidates: which (position, extreme
colour) pairs of a clean image move a network's margin most, predicted from
the image alone.

OPPSLA (Yuviler & Drachsler-Cohen, PLDI 2023) synthesises, per network, a
program that orders the candidates from conditions on the image, learned on
training images. This is the same idea as a linear model: every candidate
``(p, c)`` (position p, one of the 8 extreme colours c, ``methods.CORNERS``)
gets the features of :func:`features` (the colour's rank by distance from
the pixel's own colour, as OPPSLA's fixed order; distances from the pixel's
and its neighbourhood's colours; the distance from the centre; local
contrast), and ridge regression (:func:`fit`) predicts whether the candidate
is among the image's top 1% by how far it lowers Sparse-RS's margin loss
(:func:`targets`), from the exhaustive corner maps of held-out
images (every candidate queried: ``corner_search.margins``,
``experiments.fit_corner_prior``). The
method ``learned_corners`` (:mod:`methods`) queries candidates by this
prediction, updated by what its queries measure.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

# The 8 extreme colours ({0, 255}^3), red slowest: int32[8, 3] (also methods.CORNERS).
CORNERS = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.int32)

FEATURES = (
    tuple(f"rank_{i}" for i in range(8))  # the colour's rank by distance from the pixel's own (OPPSLA)
    + tuple(f"corner_{i}" for i in range(8))  # which extreme colour
    + ("dist_own", "dist_own_sq", "dist_3x3", "dist_3x3_sq", "dist_5x5", "centre", "centre_sq",
       "contrast", "contrast_x_dist_3x3", "centre_x_dist_3x3"))

DEFAULT_PATH = pathlib.Path(__file__).resolve().parent / "weights" / "corner_prior_allconv.json"


def _box_mean(x: jax.Array, r: int) -> jax.Array:
  """float32[H, W, C] -> the mean over each (2r+1)^2 window, edges replicated."""
  k = 2 * r + 1
  padded = jnp.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
  return jax.lax.reduce_window(padded, 0.0, jax.lax.add, (k, k, 1), (1, 1, 1), "VALID") / (k * k)


def corner_rank(clean: jax.Array) -> jax.Array:
  """int32[H W, 8]: each position's rank of every extreme colour, 0 for the
  farthest from the pixel's own colour (ties: the lower corner index first):
  OPPSLA's order of colours."""
  colour = clean.reshape(-1, 1, 3).astype(jnp.float32)
  dist = jnp.sum((colour - jnp.asarray(CORNERS, jnp.float32)[None]) ** 2, -1)
  return jnp.argsort(jnp.argsort(-dist, axis=1, stable=True), axis=1, stable=True).astype(jnp.int32)


def features(clean: jax.Array) -> jax.Array:
  """The candidates' features (``FEATURES``, in order).

  Args:
    clean: uint8[H, W, 3] the clean image.
  Returns:
    float32[H * W, 8, F]: row ``y * W + x``, corner c (``CORNERS`` order).
  """
  x = clean.astype(jnp.float32)
  h, w, _ = x.shape
  corners = jnp.asarray(CORNERS, jnp.float32)
  diag = float(np.sqrt(3) * 255)

  def dist(colour):  # float32[H, W, 3] -> float32[H W, 8], in units of the cube's diagonal
    return jnp.sqrt(jnp.sum((colour.reshape(-1, 1, 3) - corners[None]) ** 2, -1)) / diag

  d_own, d3, d5 = dist(x), dist(_box_mean(x, 1)), dist(_box_mean(x, 2))
  rank = corner_rank(clean)
  lum = x.mean(-1, keepdims=True)
  contrast = jnp.sqrt(jnp.maximum(_box_mean(lum ** 2, 1) - _box_mean(lum, 1) ** 2, 0.0)).reshape(-1, 1) / 128.0
  yy, xx = np.divmod(np.arange(h * w), w)
  centre = jnp.asarray(np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) / max(h, w), jnp.float32)[:, None]
  ones = jnp.ones((h * w, 8), jnp.float32)
  columns = [centre * ones, centre ** 2 * ones, contrast * ones, contrast * d3, centre * d3]
  scalars = jnp.stack([d_own, d_own ** 2, d3, d3 ** 2, d5, *columns], -1)
  onehots = [jax.nn.one_hot(rank, 8, dtype=jnp.float32),
             jnp.broadcast_to(jnp.eye(8, dtype=jnp.float32), (h * w, 8, 8))]
  return jnp.concatenate(onehots + [scalars], -1)


def score(clean: jax.Array, weights) -> jax.Array:
  """float32[H * W, 8]: the predicted share of the clean margin each candidate
  removes (higher: query sooner). weights: float[F] (``FEATURES`` order)."""
  return features(clean) @ jnp.asarray(weights, jnp.float32)


def targets(margins: np.ndarray, top: float = 0.01) -> np.ndarray:
  """The regression target: 1 for each image's ``top`` share of candidates
  that move its margin most, else 0. What a search at a small budget needs is
  the order of an image's best few candidates, not the typical effect.

  Args:
    margins: float[N, Q] the margin loss with each candidate written in.
  Returns:
    float32[N, Q].
  """
  margins = np.asarray(margins)
  k = max(1, int(round(top * margins.shape[1])))
  best = np.argpartition(margins, k - 1, axis=1)[:, :k]
  out = np.zeros(margins.shape, np.float32)
  np.put_along_axis(out, best, 1.0, axis=1)
  return out


def order_success(scores: np.ndarray, flips: np.ndarray, budgets) -> dict[int, int]:
  """How many images a fixed order fools within each budget.

  Args:
    scores: float[N, Q] (higher: queried sooner); flips: bool[N, Q] whether
      each candidate misclassifies its image.
  Returns:
    ``{budget: images with a flipping candidate among their first budget}``.
  """
  order = np.argsort(-np.asarray(scores), axis=1, kind="stable")
  f = np.take_along_axis(np.asarray(flips), order, 1)
  first = np.where(f.any(1), f.argmax(1) + 1, np.iinfo(np.int64).max)
  return {int(b): int((first <= b).sum()) for b in budgets}


def batch_features(images, batch: int = 16) -> np.ndarray:
  """float32[N, H W 8, F]: :func:`features` of uint8[N, H, W, 3] images."""
  fn = jax.jit(jax.vmap(features))
  out = [np.asarray(fn(jnp.asarray(images[i:i + batch]))) for i in range(0, len(images), batch)]
  return np.concatenate(out).reshape(len(images), -1, len(FEATURES))


def cross_validate(feats, margins, baselines: dict | None = None, folds: int = 4, ridge: float = 1e-3,
                   top: float = 0.01, budgets=(16, 50, 100, 200, 1000)) -> dict:
  """Held-out success of the learned fixed order (fit on the other folds).

  Args:
    feats: float[N, Q, F]; margins: float[N, Q] (``corner_search.margins``).
    baselines: ``{name: float[N, Q] scores}`` of other fixed orders (higher
      first) scored on the same folds.
  Returns:
    ``{"learned": {budget: images fooled}, name: {...}, "images": N,
    "vulnerable": images some candidate fools}``, images fooled summed over
    the held-out folds.
  """
  margins = np.asarray(margins)
  flips = margins < 0
  fold = np.arange(len(margins)) % folds
  out = {"learned": dict.fromkeys(map(int, budgets), 0)}
  for k in range(folds):
    train, test = fold != k, fold == k
    w = fit(feats[train], targets(margins[train], top), ridge)
    for b, v in order_success(feats[test] @ w, flips[test], budgets).items():
      out["learned"][b] += v
  for name, scores in (baselines or {}).items():
    out[name] = order_success(scores, flips, budgets)
  return {**out, "images": int(len(margins)), "vulnerable": int(flips.any(1).sum())}


def fit(feats: np.ndarray, target: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
  """Ridge regression of ``target`` on ``feats``, each image weighted equally.

  Args:
    feats: float[N, Q, F] the features of every candidate of N images.
    target: float[N, Q] (:func:`targets`).
    ridge: the penalty per image on the weights' squared norm.
  Returns:
    float64[F] the weights.
  """
  feats = np.asarray(feats, np.float64)
  n, q, f = feats.shape
  gram = np.einsum("nqf,nqg->fg", feats, feats) / q
  rhs = np.einsum("nqf,nq->f", feats, np.asarray(target, np.float64)) / q
  return np.linalg.solve(gram + ridge * n * np.eye(f), rhs)


def load(path=None) -> tuple[float, ...]:
  """The weights in a JSON written by ``experiments.fit_corner_prior``
  (default: the bundled AllConv prior), checked against ``FEATURES``."""
  path = pathlib.Path(path or DEFAULT_PATH)
  with open(path) as f:
    spec = json.load(f)
  if tuple(spec.get("features", ())) != FEATURES:
    raise ValueError(f"{path}: its features do not match corner_prior.FEATURES; refit it")
  return tuple(float(v) for v in spec["weights"])
