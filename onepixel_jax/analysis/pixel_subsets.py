"""How many of a k-pixel attack's pixels does its success need?

The paper's Table V reports success with 3 and 5 pixels, and more pixels
fool more images; but a DE run with k pixels optimises all k at once, so a
k-pixel success may owe everything to one of them. For every successful
k-pixel perturbation this module evaluates all ``2^k - 1`` non-empty subsets
of its pixels on the clean image (``2^k - 1`` queries; 31 for 5 pixels) and
reports the smallest subset that still succeeds, by the attack's own
criterion (targeted: the target class wins; non-targeted: any class but the
true one wins).

A subset keeps the pixel tuples it names, in their order (the later of two
tuples at one position wins, as in ``perturb.apply``); the others write the
last kept tuple again, which leaves the image as if they were absent.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from onepixel_jax.analysis import Outputs, query


def subsets(k: int) -> np.ndarray:
  """bool[2^k - 1, k]: every non-empty subset of k pixels, by size, then in
  lexicographic order of the pixels' indices (the full set last)."""
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  rows = [np.isin(np.arange(k), c) for s in range(1, k + 1) for c in itertools.combinations(range(k), s)]
  return np.asarray(rows, bool)


def subset_perturbations(perturbation, masks) -> np.ndarray:
  """int32[S, k, 5]: ``perturbation`` int[k, 5] restricted to each subset of
  ``masks`` bool[S, k] (left out tuples repeat the last kept one)."""
  pert = np.asarray(perturbation, np.int32)
  masks = np.asarray(masks, bool)
  if pert.ndim != 2 or pert.shape[1] != 5 or masks.ndim != 2 or masks.shape[1] != pert.shape[0]:
    raise ValueError(f"perturbation must be int[k, 5] and masks bool[S, k], got {pert.shape} and {masks.shape}")
  if not masks.any(axis=1).all():
    raise ValueError("every subset must keep at least one pixel")
  k = pert.shape[0]
  last = k - 1 - np.argmax(masks[:, ::-1], axis=1)                     # [S] the last kept tuple
  pick = np.where(masks, np.arange(k), last[:, None])                 # [S, k]
  return pert[pick]


@dataclasses.dataclass(frozen=True)
class SubsetResult:
  """Every subset of every successful perturbation, evaluated.

  Attributes:
    masks: bool[S, k] the subsets (``subsets(k)``), the full set last.
    probs: float32[N, S, C] class probabilities with each subset written in.
    success: bool[N, S] whether each subset succeeds by the attack's criterion.
    labels, targets: int[N] (targets -1 for non-targeted attacks).
  """

  masks: np.ndarray
  probs: np.ndarray
  success: np.ndarray
  labels: np.ndarray
  targets: np.ndarray

  @property
  def sizes(self) -> np.ndarray:
    """int[S] the number of pixels in each subset."""
    return self.masks.sum(axis=1)

  @property
  def minimal_size(self) -> np.ndarray:
    """int[N]: the fewest pixels of each perturbation that succeed (0 where
    no subset does). A subset may succeed where the full set does not (a
    later tuple overwriting a succeeding one): ``success[:, -1]`` says."""
    first = self.minimal_subset
    return np.where(first >= 0, self.sizes[np.maximum(first, 0)], 0)

  @property
  def minimal_subset(self) -> np.ndarray:
    """int[N]: the index (into ``masks``, ordered by size) of the first
    smallest succeeding subset, -1 where none succeeds."""
    return np.where(self.success.any(axis=1), np.argmax(self.success, axis=1), -1)


def evaluate(predict, images, perturbations, labels, targets=None, batch_size: int | None = None,
             incremental: bool = True) -> SubsetResult:
  """Evaluates every subset of every perturbation.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3] the clean images.
    perturbations: int[N, k, 5] each attack's pixels ``(x, y, r, g, b)``.
    labels: int[N] true classes; targets: int[N] target classes (-1 or None:
      non-targeted).
  Returns:
    SubsetResult; ``success[:, -1]`` is the full perturbation's.
  """
  pert = np.asarray(perturbations, np.int32)
  labels = np.asarray(labels, np.int64)
  n = len(labels)
  targets = np.full(n, -1) if targets is None else np.asarray([-1 if t is None else t for t in targets], np.int64)
  if pert.ndim != 3 or pert.shape[0] != n or pert.shape[2] != 5 or len(targets) != n:
    raise ValueError(f"perturbations must be int[N, k, 5] with N labels and targets, got shape {pert.shape} "
                     f"for {n} labels and {len(targets)} targets")
  masks = subsets(pert.shape[1])
  if n == 0:
    return SubsetResult(masks, np.zeros((0, len(masks), 0), np.float32), np.zeros((0, len(masks)), bool), labels,
                        targets)
  sub = np.stack([subset_perturbations(p, masks) for p in pert])
  probs = query.probabilities(predict, images, sub, batch_size, incremental=incremental)
  pred = probs.argmax(-1)
  success = np.where(targets[:, None] >= 0, pred == targets[:, None], pred != labels[:, None])
  return SubsetResult(masks, probs, success, labels, targets)


def successful_records(records, min_pixels: int = 2) -> list[dict]:
  """The successful attack records with at least ``min_pixels`` pixels."""
  return [r for r in records if r.get("success") and len(r["perturbation"]) >= min_pixels]


def summary(res: SubsetResult) -> dict:
  """Counts: records by their minimal number of pixels, and per subset size
  the share of subsets that succeed (over every record and subset of that
  size)."""
  k = res.masks.shape[1]
  minimal = res.minimal_size
  sizes = res.sizes
  share = [float(res.success[:, sizes == s].mean()) if len(minimal) else float("nan") for s in range(1, k + 1)]
  return {"records": int(len(minimal)), "pixels": k,
          "reproduced": int(res.success[:, -1].sum()),  # the full set succeeds again
          "minimal_size_counts": {str(s): int((minimal == s).sum()) for s in range(1, k + 1)},
          "need_all": int((minimal == k).sum()),
          "one_pixel_suffices": int((minimal == 1).sum()),
          "mean_minimal_size": float(minimal[minimal > 0].mean()) if (minimal > 0).any() else float("nan"),
          "subset_success_share_by_size": {str(s): v for s, v in zip(range(1, k + 1), share)}}


def outputs(res: SubsetResult, ids, class_names, meta: dict, note: str = "") -> Outputs:
  """``pixel_subsets_summary.json`` (a row per record and the summary) and the
  figure ``pixel_subsets`` (kind ``pixel_subsets``)."""
  s = summary(res)
  minimal, first = res.minimal_size, res.minimal_subset
  rows = [{"id": int(i), "label": int(res.labels[j]), "target": None if res.targets[j] < 0 else int(res.targets[j]),
           "minimal_size": int(minimal[j]),
           "minimal_pixels": np.flatnonzero(res.masks[first[j]]).tolist() if first[j] >= 0 else [],
           "full_set_succeeds": bool(res.success[j, -1]),
           "succeeding_subsets": int(res.success[j].sum())}
          for j, i in enumerate(ids)]
  title = (f"{meta.get('model', '')}: pixels a {s['pixels']}-pixel success needs "
           f"({s['records']} successes)")
  fig = {"title": title, "pixels": s["pixels"], "minimal_size_counts": s["minimal_size_counts"],
         "subset_success_share_by_size": s["subset_success_share_by_size"], "note": note}
  summary_json = {**meta, "class_names": list(class_names), "summary": s, "records": rows}
  return Outputs(json={"pixel_subsets_summary.json": summary_json}, figures={"pixel_subsets": ("pixel_subsets", fig)})
