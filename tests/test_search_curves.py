"""Success-against-queries curves: known answers from first-success queries."""

import numpy as np
import pytest

from onepixel_jax.analysis import search_curves


def records(first, popsize=16):
  return [{"id": i, "label": 0, "target": None, "success": q > 0, "predicted": 1 if q > 0 else 0,
           "adversarial_prob": 0.6, "true_prob": 0.4, "target_prob": None, "perturbation": [[0, 0, 0, 0, 0]],
           "queries": q if q > 0 else 64, "generations": 3, "distortion": 1.0, "fitness_history": [0.5] * 4,
           "predicted_history": [0] * 4, "popsize": popsize, "first_success_query": q}
          for i, q in enumerate(first)]


def test_success_within_counts_first_successes():
  wins, n = search_curves.success_within(records([1, 5, 40, -1]), [1, 4, 5, 39, 40, 64])
  assert n == 4 and wins.tolist() == [1, 1, 2, 2, 3, 3]


def test_table_rows_have_wilson_intervals_and_the_run_budget():
  rows = search_curves.table({"a": records([3, -1, -1, -1])}, search_curves.table_budgets(40))
  assert [r["budget"] for r in rows] == [40]
  (r,) = rows
  assert (r["successes"], r["n"], r["rate"]) == (1, 4, 0.25)
  assert r["ci95"][0] == pytest.approx(0.0456, abs=1e-3) and r["ci95"][1] == pytest.approx(0.6994, abs=1e-3)
  assert search_curves.table_budgets(40400) == [100, 1000, 8192, 40400]


def test_grid_is_log_spaced_and_holds_the_table_budgets():
  g = search_curves.budgets_grid(40400)
  assert g[0] == 1 and g[-1] == 40400 and {100, 1000, 8192} <= set(g.tolist())
  assert (np.diff(g) > 0).all()


def test_old_de_records_count_at_generation_ends():
  rec = records([-1])[0]
  del rec["first_success_query"]
  rec["predicted_history"] = [0, 0, 3, 3]
  wins, _ = search_curves.success_within([rec], [47, 48])
  assert wins.tolist() == [0, 1]  # end of generation 2: 16 x 3 queries


def test_markdown_table():
  rows = search_curves.table({"de": records([3, -1]), "corner": records([1, 2])}, [10])
  text = search_curves.format_table(rows)
  assert "| de | 50% (9%-91%), 1/2 |" in text and "| corner | 100% (34%-100%), 2/2 |" in text


def test_recall_against_the_grid_reference():
  # images 0-3 grid-vulnerable, 4 not, 5 not in the reference (left out)
  grid = {0: True, 1: True, 2: True, 3: True, 4: False}
  rows = search_curves.recall_table({"a": records([5, 50, -1, -1, 7, 2])}, [10, 100], grid)
  assert [(r["budget"], r["found"], r["vulnerable"], r["beyond"], r["images"]) for r in rows] == [
      (10, 1, 4, 1, 5), (100, 2, 4, 1, 5)]
  assert rows[1]["recall"] == 0.5 and rows[1]["ci95"][0] < 0.5 < rows[1]["ci95"][1]
  text = search_curves.format_table(rows, recall=True)
  assert "| a | 25% (5%-70%), 1/4, +1 beyond | 50% (15%-85%), 2/4, +1 beyond |" in text
  out = search_curves.outputs({"a": records([5, 50, -1, -1, 7, 2])}, 100, {}, grid).json["search_table.json"]
  assert out["ceiling"] == {"rate": 0.8, "n": 5, "vulnerable": 4, "label": "grid reference (n=5)"}
  assert out["recall"] == rows[1:]  # the table budgets up to the run's 100
