"""The exhaustive one-pixel grid reference: every position x every colour of a grid.

For one pixel the search space is small in dimension: H x W positions times
a 3-D colour cube. Trying every position with every colour of the grid
{0, ..., 255}^3 sampled at ``levels`` values per channel (3: {0, 128, 255},
27 colours including the 8 corners; 5: {0, 64, 128, 191, 255}, 125 colours)
is the strongest one-pixel attack there can be at that grid: whether any grid
pixel flips the label (or reaches a target) is a reference against which any
search (DE, corner, random, the successors') is scored by its *recall*.
Levels 2 is the corner search (:mod:`corner_search`, CornerSearch's first
stage). Queries go through :func:`query.probabilities`, on the incremental
path where the model has one.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from onepixel_jax.analysis import query


def colour_grid(levels: int = 3) -> np.ndarray:
  """int32[levels^3, 3]: every colour whose channels are each one of ``levels``
  evenly spaced values in [0, 255] (rounded half to even), red slowest."""
  if levels < 2:
    raise ValueError(f"levels must be >= 2, got {levels}")
  values = np.round(np.arange(levels) * 255 / (levels - 1)).astype(np.int32)
  return np.array(list(itertools.product(values, repeat=3)), np.int32)


def grid_perturbations(height: int, width: int, colours) -> np.ndarray:
  """int32[H * W * G, 1, 5]: every position with every one of the G ``colours``.

  Row ``(y * W + x) * G + c`` writes ``colours[c]`` at column x, row y (so
  ``reshape(H, W, G)`` recovers the grid).
  """
  colours = np.asarray(colours, np.int32)
  g = len(colours)
  y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(g), indexing="ij")
  return np.concatenate([x.reshape(-1, 1), y.reshape(-1, 1), colours[c.ravel()]],
                        axis=1).astype(np.int32)[:, None, :]


@dataclasses.dataclass(frozen=True)
class GridReference:
  """The grid search over N images (H x W positions, G colours).

  Attributes:
    predicted: int16[N, H, W, G] the label with colour g at (row, column).
    true_prob: float32[N, H, W, G] the true class's probability there.
    target_prob: float32[N, H, W, G] the target's probability (NaN where an
      attack is non-targeted).
    labels: int[N]; targets: int[N] (-1: non-targeted).
    colours: int32[G, 3].
    max_prob: float32[N, C] each class's highest probability over the whole
      grid (None where not kept).
  """

  predicted: np.ndarray
  true_prob: np.ndarray
  target_prob: np.ndarray
  labels: np.ndarray
  targets: np.ndarray
  colours: np.ndarray
  max_prob: np.ndarray | None = None

  @property
  def queries(self) -> int:
    """Queries per image (H * W * G)."""
    return int(np.prod(self.predicted.shape[1:]))

  @property
  def flips(self) -> np.ndarray:
    """bool[N, H, W, G]: the grid pixel succeeds (targeted: is classified as
    the target; non-targeted: as anything but the label)."""
    t = self.targets[:, None, None, None]
    return np.where(t >= 0, self.predicted == t, self.predicted != self.labels[:, None, None, None])

  @property
  def vulnerable(self) -> np.ndarray:
    """bool[N]: some grid pixel succeeds."""
    return self.flips.any(axis=(1, 2, 3))

  @property
  def vulnerable_positions(self) -> np.ndarray:
    """int[N]: positions where some grid colour succeeds."""
    return self.flips.any(-1).sum(axis=(1, 2))

  @property
  def position_map(self) -> tuple[np.ndarray, np.ndarray]:
    """(float32[N, H, W], int[N, H, W]): at each position the lowest true-class
    probability over the grid colours, and the class predicted there."""
    g = self.true_prob.argmin(-1)
    low = np.take_along_axis(self.true_prob, g[..., None], -1)[..., 0]
    return low, np.take_along_axis(self.predicted, g[..., None], -1)[..., 0].astype(int)

  @property
  def best_pixel(self) -> np.ndarray:
    """int[N, 5]: the best succeeding grid pixel (x, y, r, g, b): lowest
    true-class probability (non-targeted) or highest target probability
    (targeted); -1 where none succeeds."""
    n, h, w, g = self.predicted.shape
    score = np.where(self.targets[:, None, None, None] >= 0, -self.target_prob, self.true_prob)
    score = np.where(self.flips, score, np.inf).reshape(n, -1)
    best = score.argmin(1)
    y, x, c = np.unravel_index(best, (h, w, g))
    out = np.concatenate([np.stack([x, y], 1), self.colours[c]], 1).astype(int)
    out[~self.vulnerable] = -1
    return out


def search(predict, images, labels, targets=None, levels: int = 3, batch_size: int | None = None,
           progress: bool = False, incremental: bool = True) -> GridReference:
  """Evaluates every position x grid colour of every image, in one batched evaluation.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3]; labels: int[N]; targets: int[N] or None
      (-1 or None: non-targeted).
    levels: values per channel (3: 27 colours; 5: 125).
    batch_size, incremental: as :func:`query.probabilities`.
  """
  images = np.asarray(images)
  labels = np.asarray(labels, np.int64)
  n, h, w = images.shape[:3]
  targets = np.full(n, -1, np.int64) if targets is None else np.asarray(targets, np.int64)
  if targets.shape != (n,):
    raise ValueError(f"targets must be int[{n}] (-1 for non-targeted), got shape {targets.shape}")
  colours = colour_grid(levels)
  pert = np.broadcast_to(grid_perturbations(h, w, colours)[None], (n, h * w * len(colours), 1, 5))
  probs = query.probabilities(predict, images, pert, batch_size, progress=progress,
                              incremental=incremental).reshape(n, h, w, len(colours), -1)  # one compilation
  pick = lambda cls: np.take_along_axis(probs, cls[:, None, None, None, None], -1)[..., 0]  # noqa: E731
  target_prob = np.where(targets[:, None, None, None] >= 0, pick(np.maximum(targets, 0)), np.nan)
  return GridReference(predicted=probs.argmax(-1).astype(np.int16), true_prob=pick(labels),
                       target_prob=target_prob.astype(np.float32), labels=labels, targets=targets,
                       colours=colours, max_prob=probs.max(axis=(1, 2, 3)))


def recall(success, reference: GridReference) -> float:
  """Share of the grid-vulnerable images that a search fooled (``success``:
  bool[N] over the same images and targets); NaN when none is vulnerable."""
  success = np.asarray(success, bool)
  vul = reference.vulnerable
  return float(success[vul].mean()) if vul.any() else float("nan")
