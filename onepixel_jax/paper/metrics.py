"""The paper's metrics (Sec. IV, Tables IV-VI, Figs. 5-7) over attack records.

A record is a dict as written to ``results.jsonl`` (see ``attack.attack_iter``):
at least ``id`` (image), ``label``, ``target`` (None for non-targeted),
``success``, ``adversarial_prob``, ``queries`` and ``distortion``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def success_rate(records) -> float:
  """Successful attacks / attacks. For targeted records this is the paper's
  targeted success rate over (image, target) pairs."""
  return float(np.mean([r["success"] for r in records])) if records else float("nan")


def fooled_images(records) -> dict:
  """``{image id: whether at least one of its attacks succeeded}`` over the
  images ``records`` attack."""
  fooled = defaultdict(bool)
  for r in records:
    fooled[r["id"]] |= bool(r["success"])
  return dict(fooled)


def nontargeted_from_targeted(records) -> float:
  """The paper's headline non-targeted rate from targeted runs: the share of
  attacked images for which at least one of the targeted attacks succeeded."""
  fooled = fooled_images(records)
  return float(np.mean(list(fooled.values()))) if fooled else float("nan")


def confidence(records) -> float:
  """Mean probability of the adversarial class over *successful* attacks only."""
  p = [r["adversarial_prob"] for r in records if r["success"]]
  return float(np.mean(p)) if p else float("nan")


def mean_queries(records) -> float:
  """Mean model evaluations per attack (Table VI)."""
  return float(np.mean([r["queries"] for r in records])) if records else float("nan")


def mean_distortion(records, successful_only: bool = True) -> float:
  """Mean change in one colour channel at the changed pixels (Table VI)."""
  d = [r["distortion"] for r in records if r["success"] or not successful_only]
  return float(np.mean(d)) if d else float("nan")


def targets_histogram(records, num_classes: int = 10) -> np.ndarray:
  """int[num_classes]: how many images reach 0, 1, ..., num_classes-1 target
  classes (Fig. 5); counts images with at least one targeted record."""
  reached = defaultdict(set)
  for r in records:
    reached[r["id"]]
    if r["success"]:
      reached[r["id"]].add(r["target"])
  return np.bincount([len(s) for s in reached.values()], minlength=num_classes).astype(int)


def pair_counts(records, num_classes: int = 10) -> np.ndarray:
  """int[C, C]: successful attacks from original class (row) to target class
  (column), the heat maps of Figs. 6-7. Non-targeted records count toward the
  predicted class."""
  m = np.zeros((num_classes, num_classes), int)
  for r in records:
    if r["success"]:
      to = r["target"] if r["target"] is not None else r["predicted"]
      m[r["label"], to] += 1
  return m


def corner_pixels(records) -> tuple[int, int]:
  """(pixels of successful perturbations at a corner of the colour cube, every
  channel 0 or 255; all pixels of successful perturbations). A record's
  ``perturbation`` is ``[[x, y, r, g, b], ...]``."""
  pixels = [p for r in records if r["success"] for p in r["perturbation"]]
  return sum(all(c in (0, 255) for c in p[2:]) for p in pixels), len(pixels)


def targeted_profile(records, budget: int, threshold: float = 0.9, clean_true_prob: dict | None = None) -> dict:
  """What lies under a targeted run's cells (Tables IV-VI): per image and per
  fooled image, how many targets succeed; how often the paper's early stop
  fired (the target's probability past ``threshold``, ending the attack
  before its ``budget`` of evaluations) and the highest target probability
  any attack's best candidate reached; which classes the successes start from
  and end at (``int[C]`` counts, the margins of Figs. 6-7); and how many of
  their pixels are colour-cube corners (``corner_pixels``).

  Args:
    records: targeted records, each with ``target_prob`` (the best
      candidate's probability of the target) and ``perturbation``.
    budget: the most evaluations an attack may use (40,400 in the paper).
    clean_true_prob: ``{image id: the network's clean probability of its true
      class}``; with it the profile gains ``clean_true_prob_summary``, which
      tells whether the network's surer images resist.
  """
  fooled = fooled_images(records)
  successes = sum(bool(r["success"]) for r in records)
  pairs = pair_counts(records)
  corners, pixels = corner_pixels(records)
  return {
      "images": len(fooled), "fooled": sum(fooled.values()), "attacks": len(records), "successes": successes,
      "targets_per_image": successes / len(fooled) if fooled else float("nan"),
      "targets_per_fooled_image": successes / sum(fooled.values()) if any(fooled.values()) else float("nan"),
      "stopped_early": sum(r["queries"] < budget for r in records),
      "reached_threshold": sum(r["target_prob"] > threshold for r in records),
      "max_target_prob": max((r["target_prob"] for r in records), default=float("nan")),
      "from_class": pairs.sum(1), "to_class": pairs.sum(0),
      "corner_pixels": corners, "success_pixels": pixels,
      **({} if clean_true_prob is None else clean_true_prob_summary(records, clean_true_prob)),
  }


def clean_true_prob_summary(records, clean_true_prob: dict) -> dict:
  """How sure the network was of the attacked images before any change:
  median (and mean) of ``clean_true_prob`` (``{image id: the clean
  probability of its true class}``) over the images ``records`` attack, and
  the median over the fooled and the unfooled ones (nan where there are none
  or an id is missing: never a median of the others)."""
  fooled = fooled_images(records)

  def stat(ids, f=np.median):
    ids = list(ids)
    if not ids or any(i not in clean_true_prob for i in ids):
      return float("nan")
    return float(f([clean_true_prob[i] for i in ids]))
  return {"clean_true_prob_median": stat(fooled), "clean_true_prob_mean": stat(fooled, np.mean),
          "clean_true_prob_fooled": stat(i for i, f in fooled.items() if f),
          "clean_true_prob_not_fooled": stat(i for i, f in fooled.items() if not f)}


Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
  """The Wilson score interval of a binomial proportion (95% by default);
  (nan, nan) for n = 0. Unlike the normal approximation it stays inside
  [0, 1] and is sound for 0 or n successes."""
  if n == 0:
    return float("nan"), float("nan")
  p = successes / n
  centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
  return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mean_interval(values, z: float = Z95) -> tuple[float, float]:
  """A normal-approximation 95% interval of the mean of ``values`` (nan, nan
  for fewer than two values)."""
  v = np.asarray(values, float)
  if len(v) < 2:
    return float("nan"), float("nan")
  half = z * v.std(ddof=1) / np.sqrt(len(v))
  return float(v.mean() - half), float(v.mean() + half)


def estimates(records) -> dict:
  """Each of the paper's quantities over ``records`` with its 95% interval and
  sample size: ``{name: (value, (lo, hi), n)}``. Rates get Wilson intervals
  (targeted success over attacks; non-targeted success over images, from
  targeted runs as the paper counts it); confidence, evaluations and
  distortion get normal intervals of their means."""
  out = {}
  n = len(records)
  k = sum(bool(r["success"]) for r in records)
  out["success"] = (k / n if n else float("nan"), wilson_interval(k, n), n)
  if records and records[0]["target"] is not None:
    fooled = fooled_images(records)
    m, j = len(fooled), sum(fooled.values())
    out["nontargeted_from_targeted"] = (j / m if m else float("nan"), wilson_interval(j, m), m)
  probs = [r["adversarial_prob"] for r in records if r["success"]]
  dist = [r["distortion"] for r in records if r["success"]]
  queries = [r["queries"] for r in records]
  for name, v in (("confidence", probs), ("mean_queries", queries), ("mean_distortion", dist)):
    out[name] = (float(np.mean(v)) if v else float("nan"), mean_interval(v), len(v))
  return out


def summary(records) -> dict:
  """The numbers every run reports."""
  targeted = bool(records) and records[0]["target"] is not None
  out = {
      "num_images": len({r["id"] for r in records}),
      "num_attacks": len(records),
      "num_successes": int(sum(r["success"] for r in records)),
      "success_rate": success_rate(records),
      "confidence": confidence(records),
      "mean_queries": mean_queries(records),
      "mean_distortion": mean_distortion(records),
  }
  if targeted:
    out["nontargeted_success_rate"] = nontargeted_from_targeted(records)
  return out
