"""Per-generation attack histories: success and best fitness by generation or by queries.

Attack records (``attack.attack_iter``, ``results.jsonl``) carry
``predicted_history`` (the best candidate's label after each generation, -1
after the attack stopped) and ``fitness_history`` (the best fitness, NaN after
it stopped). Generation ``g`` of an attack with population ``P`` has used
``P * (g + 1)`` queries.
"""

from __future__ import annotations

import numpy as np


def popsize(record) -> int:
  """The population size of an attack: its queries over its generations + 1."""
  return int(record["queries"]) // (int(record["generations"]) + 1)


def _hit(record, label) -> bool:
  t = record["target"]
  return label >= 0 and (label == t if t is not None else label != record["label"])


def first_success_generation(records) -> np.ndarray:
  """int[N]: the first generation whose best candidate succeeds, -1 if none."""
  out = np.full(len(records), -1)
  for i, r in enumerate(records):
    for g, lab in enumerate(r["predicted_history"]):
      if _hit(r, lab):
        out[i] = g
        break
  return out


def first_success_queries(records) -> np.ndarray:
  """float[N]: queries spent when the attack first succeeded (inf if never)."""
  g = first_success_generation(records)
  q = np.array([popsize(r) * (gi + 1) for r, gi in zip(records, g)], np.float64)
  return np.where(g >= 0, q, np.inf)


def success_by_generation(records, generations: int) -> np.ndarray:
  """float[generations + 1]: share of attacks that succeeded by each generation."""
  g = first_success_generation(records)
  if not len(records):
    return np.full(generations + 1, np.nan)
  return np.array([np.mean((g >= 0) & (g <= k)) for k in range(generations + 1)])


def success_by_queries(records, budgets) -> np.ndarray:
  """float[len(budgets)]: share of attacks that succeeded within each query budget."""
  q = first_success_queries(records)
  if not len(records):
    return np.full(len(budgets), np.nan)
  return np.array([np.mean(q <= b) for b in budgets])


def objective_history(records, generations: int | None = None) -> np.ndarray:
  """float[N, G + 1]: the attacked probability after each generation, carried
  forward after the attack stopped: the true class's probability
  (non-targeted, lower is better) or the target's (targeted, higher is better)."""
  g = generations if generations is not None else max((len(r["fitness_history"]) for r in records), default=1) - 1
  out = np.full((len(records), g + 1), np.nan)
  for i, r in enumerate(records):
    h = np.array([np.nan if v is None else v for v in r["fitness_history"]], np.float64)[: g + 1]
    if r["target"] is not None:
      h = -h
    last = np.nan
    for k in range(g + 1):
      if k < len(h) and np.isfinite(h[k]):
        last = h[k]
      out[i, k] = last
  return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
  """The Wilson score interval of a success rate (95% by default)."""
  if n == 0:
    return float("nan"), float("nan")
  p = successes / n
  d = 1 + z * z / n
  c = (p + z * z / (2 * n)) / d
  h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
  return float(c - h), float(c + h)
