"""Success against queries: every search method on the same images and budget.

Researchers compare one-pixel searches by their success within a query
budget (Sparse-RS, Croce et al. AAAI 2022; OPPSLA, Yuviler &
Drachsler-Cohen PLDI 2023). Every method of :mod:`onepixel_jax.methods` runs
in the attack engine with the same query counting; each attack records the
query at which it first evaluated a succeeding candidate
(``first_success_query``), so one run at the largest budget gives the
success at every smaller one. The grid reference (:mod:`grid_reference`),
where it exists for the same images, is drawn as a ceiling: the share of
images that some grid pixel fools.
"""

from __future__ import annotations

import numpy as np

from onepixel_jax.analysis import Outputs, history

# Budgets of the README's table: OPPSLA's 100, 1,000, CornerSearch's 8,192
# (32 x 32 x 8) and the paper's 40,400 (population 400 x 101 generations).
TABLE_BUDGETS = (100, 1000, 8192, 40400)


def budgets_grid(max_queries: int, points: int = 60) -> np.ndarray:
  """int[~points]: 1 .. max_queries, log-spaced, with the table's budgets."""
  grid = np.unique(np.round(np.logspace(0, np.log10(max(max_queries, 1)), points)).astype(int))
  return np.union1d(grid, [b for b in TABLE_BUDGETS if b <= max_queries])


def table_budgets(max_queries: int) -> list[int]:
  """The table's budgets up to ``max_queries``, and ``max_queries`` itself."""
  return sorted({b for b in TABLE_BUDGETS if b <= max_queries} | {int(max_queries)})


def success_within(attacks, budgets) -> tuple[np.ndarray, int]:
  """(int[len(budgets)] attacks that succeeded within each budget, n)."""
  q = history.first_success_queries(attacks)
  return np.array([int(np.sum(q <= b)) for b in budgets]), len(q)


def table(per_method: dict, budgets) -> list[dict]:
  """One row per method and budget: successes, n, rate and its 95% Wilson interval."""
  rows = []
  for name, attacks in per_method.items():
    wins, n = success_within(attacks, budgets)
    for b, k in zip(budgets, wins):
      lo, hi = history.wilson(int(k), n)
      rows.append({"method": name, "budget": int(b), "successes": int(k), "n": int(n),
                   "rate": k / n if n else float("nan"), "ci95": [lo, hi]})
  return rows


def outputs(per_method: dict, max_queries: int, meta: dict, ceiling: dict | None = None) -> Outputs:
  """The curves and the table as analysis outputs.

  Args:
    per_method: ``{method: AttackResult or records}``, the same images for every method.
    max_queries: the budget every method ran with.
    meta: model, data, ids, ... (written beside the numbers).
    ceiling: optional ``{"rate": float, "n": int, "label": str}``, the grid
      reference's vulnerability rate on the same images.
  """
  grid = budgets_grid(max_queries)
  curves = {}
  for name, attacks in per_method.items():
    wins, n = success_within(attacks, grid)
    curves[name] = {"success": (wins / max(n, 1)).tolist(), "n": int(n)}
  rows = table(per_method, table_budgets(max_queries))
  data = {**meta, "max_queries": int(max_queries), "budgets": grid.tolist(), "curves": curves, "table": rows,
          "ceiling": ceiling}
  return Outputs(json={"search_table.json": {**meta, "max_queries": int(max_queries), "table": rows,
                                              "ceiling": ceiling}},
                 figures={"search_curves": ("search_curves", data)})


def format_table(rows: list[dict]) -> str:
  """A Markdown table: one row per method, one column per budget (rate and Wilson interval)."""
  budgets = sorted({r["budget"] for r in rows})
  names = list(dict.fromkeys(r["method"] for r in rows))
  cell = {(r["method"], r["budget"]): r for r in rows}
  out = ["| method | " + " | ".join(f"{b:,} queries" for b in budgets) + " |",
         "|---|" + "---|" * len(budgets)]
  for m in names:
    cells = []
    for b in budgets:
      r = cell.get((m, b))
      cells.append("-" if r is None else
                   f"{r['rate']:.0%} ({r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}), {r['successes']}/{r['n']}")
    out.append(f"| {m} | " + " | ".join(cells) + " |")
  return "\n".join(out)
