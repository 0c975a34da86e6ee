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


def recall_table(per_method: dict, budgets, grid_vulnerable: dict) -> list[dict]:
  """Each method's recall against the grid reference, per budget.

  Args:
    per_method: ``{method: AttackResult or records}`` (non-targeted).
    budgets: query budgets.
    grid_vulnerable: ``{image id: bool}``, whether some pixel of the grid
      reference fools the image (``analysis.verify``'s ``grid_vulnerable``).
  Returns:
    One row per method and budget over the images both cover: ``found`` of
    ``vulnerable`` grid-vulnerable images fooled within the budget,
    ``recall`` and its 95% Wilson interval, and ``beyond``: images fooled
    that no grid pixel fools (a finer colour than the grid's).
  """
  rows = []
  for name, attacks in per_method.items():
    r = history.as_result(attacks)
    keep = np.array([int(i) in grid_vulnerable for i in r.ids], bool)
    vul = np.array([bool(grid_vulnerable.get(int(i), False)) for i in r.ids], bool)
    q = history.first_success_queries(r)
    for b in budgets:
      hit = keep & (q <= b)
      found, of = int(np.sum(hit & vul)), int(np.sum(keep & vul))
      lo, hi = history.wilson(found, of)
      rows.append({"method": name, "budget": int(b), "found": found, "vulnerable": of,
                   "recall": found / of if of else float("nan"), "ci95": [lo, hi],
                   "beyond": int(np.sum(hit & ~vul)), "images": int(keep.sum())})
  return rows


def outputs(per_method: dict, max_queries: int, meta: dict, grid_vulnerable: dict | None = None) -> Outputs:
  """The curves and the table as analysis outputs.

  Args:
    per_method: ``{method: AttackResult or records}``, the same images for every method.
    max_queries: the budget every method ran with.
    meta: model, data, ids, ... (written beside the numbers).
    grid_vulnerable: optional ``{image id: bool}`` from the grid reference
      of the same images: its vulnerability rate is drawn as a ceiling and
      every method's recall against it is tabled (``recall_table``).
  """
  grid = budgets_grid(max_queries)
  curves = {}
  for name, attacks in per_method.items():
    wins, n = success_within(attacks, grid)
    curves[name] = {"success": (wins / max(n, 1)).tolist(), "n": int(n)}
  budgets = table_budgets(max_queries)
  rows = table(per_method, budgets)
  ceiling = recall = None
  if grid_vulnerable:
    v = list(grid_vulnerable.values())
    ceiling = {"rate": float(np.mean(v)), "n": len(v), "vulnerable": int(np.sum(v)),
               "label": f"grid reference (n={len(v)})"}
    recall = recall_table(per_method, budgets, grid_vulnerable)
  data = {**meta, "max_queries": int(max_queries), "budgets": grid.tolist(), "curves": curves, "table": rows,
          "ceiling": ceiling}
  return Outputs(json={"search_table.json": {**meta, "max_queries": int(max_queries), "table": rows,
                                              "ceiling": ceiling, "recall": recall}},
                 figures={"search_curves": ("search_curves", data)})


def format_table(rows: list[dict], recall: bool = False) -> str:
  """A Markdown table: one row per method, one column per budget: success
  rate, Wilson interval and count (``table``), or with ``recall`` the recall
  against the grid reference and the images fooled beyond it (``recall_table``)."""
  budgets = sorted({r["budget"] for r in rows})
  names = list(dict.fromkeys(r["method"] for r in rows))
  cell = {(r["method"], r["budget"]): r for r in rows}
  out = ["| method | " + " | ".join(f"{b:,} queries" for b in budgets) + " |",
         "|---|" + "---|" * len(budgets)]
  for m in names:
    cells = []
    for b in budgets:
      r = cell.get((m, b))
      if r is None:
        cells.append("-")
      elif recall:
        cells.append(f"{r['recall']:.0%} ({r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}), {r['found']}/{r['vulnerable']}"
                     + (f", +{r['beyond']} beyond" if r["beyond"] else ""))
      else:
        cells.append(f"{r['rate']:.0%} ({r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}), {r['successes']}/{r['n']}")
    out.append(f"| {m} | " + " | ".join(cells) + " |")
  return "\n".join(out)
