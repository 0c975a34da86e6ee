"""Per-generation attack histories: success and best fitness by generation or by queries.

Every function takes an ``AttackResult`` (what ``attack`` returns) or a list
of attack records (``results.jsonl``; converted with
``AttackResult.from_records``). They use ``predicted_history`` (the best
candidate's label after each generation, -1 after the attack stopped),
``fitness_history`` (the best fitness, NaN after it stopped) and ``popsize``:
generation ``g`` of an attack with population ``P`` has used ``P * (g + 1)``
queries.
"""

from __future__ import annotations

import numpy as np

from onepixel_jax.paper import metrics
from onepixel_jax.results import AttackResult, popsize, succeeded

__all__ = ["as_result", "popsize", "first_success_generation", "first_success_queries", "success_by_generation",
           "success_by_queries", "objective_history", "wilson"]


def as_result(attacks) -> AttackResult:
  """An AttackResult as is; a list of records stacked (``AttackResult.from_records``)."""
  return attacks if isinstance(attacks, AttackResult) else AttackResult.from_records(list(attacks))


def first_success_generation(attacks) -> np.ndarray:
  """int[N]: the first generation whose best candidate succeeds, -1 if none."""
  r = as_result(attacks)
  ph = r.predicted_history
  hit = (ph >= 0) & succeeded(ph, r.labels[:, None], r.targets[:, None])
  return np.where(hit.any(1), hit.argmax(1), -1) if ph.size else np.full(len(r), -1)


def first_success_queries(attacks) -> np.ndarray:
  """float[N]: queries spent when the attack first evaluated a succeeding
  candidate (inf if never): exact where the attacks recorded
  ``first_success_query``, else the end of the first generation whose best
  candidate succeeds."""
  r = as_result(attacks)
  if r.first_success_query is not None:
    return np.where(r.first_success_query > 0, r.first_success_query.astype(float), np.inf)
  g = first_success_generation(r)
  return np.where(g >= 0, r.popsize * (g + 1.0), np.inf)


def success_by_generation(attacks, generations: int) -> np.ndarray:
  """float[generations + 1]: share of attacks that succeeded by each generation."""
  g = first_success_generation(attacks)
  if not len(g):
    return np.full(generations + 1, np.nan)
  return np.array([np.mean((g >= 0) & (g <= k)) for k in range(generations + 1)])


def success_by_queries(attacks, budgets) -> np.ndarray:
  """float[len(budgets)]: share of attacks that succeeded within each query budget."""
  q = first_success_queries(attacks)
  if not len(q):
    return np.full(len(budgets), np.nan)
  return np.array([np.mean(q <= b) for b in budgets])


def objective_history(attacks, generations: int | None = None) -> np.ndarray:
  """float[N, G + 1]: the attacked probability after each generation, carried
  forward after the attack stopped: the true class's probability
  (non-targeted, lower is better) or the target's (targeted, higher is better).
  ``generations`` pads (carrying forward) or cuts the histories to G."""
  r = as_result(attacks)
  fh = r.fitness_history
  g = generations if generations is not None else max(fh.shape[1] if fh.ndim == 2 else 1, 1) - 1
  h = np.full((len(r), g + 1), np.nan)
  if fh.ndim == 2 and fh.shape[1]:
    h[:, :min(g + 1, fh.shape[1])] = fh[:, :g + 1]
  h = np.where(r.targets[:, None] >= 0, -h, h)
  # Carry the last finite value forward: index of the last finite column so far.
  cols = np.where(np.isfinite(h), np.arange(g + 1)[None, :], -1)
  last = np.maximum.accumulate(cols, axis=1)
  out = np.take_along_axis(h, np.maximum(last, 0), axis=1)
  return np.where(last >= 0, out, np.nan)


wilson = metrics.wilson_interval  # the Wilson score interval of a success rate (95% by default)
