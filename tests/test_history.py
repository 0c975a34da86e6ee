"""Per-generation histories, from AttackResults and from records (old ones too)."""

import numpy as np
import pytest

from onepixel_jax.analysis import history
from tests.synthetic import record


def test_histories():
  recs = [record(0), record(2), record(None), record(3, popsize=20)]
  assert history.first_success_generation(recs).tolist() == [0, 2, -1, 3]
  assert history.first_success_queries(recs).tolist() == [10, 30, np.inf, 80]
  assert history.success_by_generation(recs, 4).tolist() == [0.25, 0.25, 0.5, 0.75, 0.75]
  assert history.success_by_queries(recs, [9, 10, 80]).tolist() == [0, 0.25, 0.75]
  obj = history.objective_history(recs, 4)
  assert obj.shape == (4, 5) and np.isfinite(obj).all() and (obj == 0.5).all()  # carried forward
  lo, hi = history.wilson(5, 10)
  assert lo < 0.5 < hi and history.wilson(0, 0)[0] != history.wilson(0, 0)[0]


def test_targeted_success_needs_the_target():
  # Reaching class 1 is a success for a non-targeted attack, not for one targeted at class 2.
  hits = record(1, target=2)
  hits["predicted_history"] = [0, 1, 2, -1, -1]
  assert history.first_success_generation([hits]).tolist() == [2]
  # Targeted fitness is minus the target's probability: the objective is the target's probability.
  assert history.objective_history([hits], 4)[0].tolist() == [-0.5] * 5


def test_records_without_popsize_still_load():
  old = {k: v for k, v in record(2, popsize=16).items() if k != "popsize"}  # written before records carried it
  assert history.first_success_queries([old]).tolist() == [48]


def test_an_attack_result_and_its_records_agree(small_result):
  cfg, res = small_result
  recs = res.records()
  for fn in (history.first_success_generation, history.first_success_queries, history.objective_history):
    np.testing.assert_array_equal(fn(res), fn(recs))
  # Every attack ran the whole budget and the first success is within it.
  q = history.first_success_queries(res)
  assert ((q <= cfg.max_queries) | np.isinf(q)).all() and (res.success == np.isfinite(q)).all()
  assert history.success_by_queries(res, [cfg.max_queries])[0] == pytest.approx(res.success_rate)
