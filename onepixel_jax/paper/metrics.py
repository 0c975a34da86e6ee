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


def nontargeted_from_targeted(records) -> float:
  """The paper's headline non-targeted rate from targeted runs: the share of
  attacked images for which at least one of the targeted attacks succeeded."""
  fooled = defaultdict(bool)
  for r in records:
    fooled[r["id"]] |= bool(r["success"])
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
