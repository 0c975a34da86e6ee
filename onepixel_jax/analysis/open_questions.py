"""The paper's open questions (Su, Vargas, Sakurai 2019, Sec. V), as experiments.

1. Does a larger initial population raise success? ``population_sweep`` runs
   DE with population sizes (50 ... 1600) at a *fixed query budget* per attack
   (generations = budget / population - 1), so every size pays the same; with
   budget 1600, population 1600 is pure random search (generation 0 only).
2. Do more generations find better adversarial examples? ``generation_curves``
   reads the per-generation histories of any attack records (the sweep's, or
   ``experiments.attack``'s results.jsonl): success by generation, and the
   attacked probability (true class for non-targeted, target for targeted)
   by generation.
3. Why are some class pairs so much easier? ``imbalance`` relates each
   (original, target) pair's success to the clean model's soft confusion
   and the images' clean margins ``log p(true) - log p(target)``;
   ``geometry`` relates it to the probing estimates of ``onepixel_jax.analysis.probe``
   (how far along the colour path the label flips and how wide the transition
   is), testing the paper's note that a long, thin boundary near the images
   makes crafting *from* them easy and *to* them hard.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np

from onepixel_jax import perturb
from onepixel_jax.analysis import Outputs, history, query
from onepixel_jax.attack import AttackConfig, attack
from onepixel_jax.results import AttackResult

# The initial population sizes asked about (the paper uses 400).
SIZES = (50, 100, 200, 400, 800, 1600)


def sweep_configs(sizes=SIZES, budget: int = 1600, base: AttackConfig = AttackConfig()) -> list[AttackConfig]:
  """One config per population size, each with ``budget // size - 1`` generations
  (so ``size * (generations + 1) <= budget`` queries)."""
  out = []
  for p in sizes:
    g = budget // p - 1
    if g < 0:
      raise ValueError(f"budget {budget} is smaller than the population {p}: no generation fits")
    out.append(dataclasses.replace(base, popsize=int(p), generations=int(g)))
  return out


def population_sweep(predict, images, labels, ids, sizes=SIZES, budget: int = 1600,
                     base: AttackConfig = AttackConfig(), seed: int = 0,
                     batch_size: int | None = None, progress: bool = False) -> dict[int, AttackResult]:
  """Non-targeted DE attacks on every image for every population size.

  Returns:
    {popsize: AttackResult (input order)}.
  """
  return {cfg.popsize: attack(predict, images, labels, None, cfg, seed, batch_size, ids=ids, progress=progress)
          for cfg in sweep_configs(sizes, budget, base)}


def sweep_summary(by_size: dict[int, AttackResult], grid,
                  true_threshold: float = AttackConfig().true_threshold) -> dict:
  """Per population size: success with its 95% Wilson interval, the share that
  reached the paper's stop (true class < ``true_threshold``), the median final
  true-class probability, and success by query budget on ``grid``.

  Also ``paired`` / ``paired_true_prob``: per image (rows, in record order) the
  success / final true-class probability of each size (columns), and
  ``lowest_true_prob_popsize``: per image, the size that ended lowest.
  """
  sizes = sorted(by_size)
  rows = []
  for p in sizes:
    res = by_size[p]
    s, true_p = res.success, res.true_prob
    lo, hi = history.wilson(int(s.sum()), len(s))
    rows.append({
        "popsize": p,
        "generations": int(res.predicted_history.shape[1] - 1) if len(res) else None,
        "attacks": len(res),
        "success": float(s.mean()) if len(s) else None,
        "ci95": [lo, hi],
        "deep_success": float(np.mean(true_p < true_threshold)) if len(s) else None,
        "median_true_prob": float(np.median(true_p)) if len(s) else None,
        "mean_true_prob": float(np.mean(true_p)) if len(s) else None,
        "mean_queries": float(np.mean(res.queries)) if len(s) else None,
        "success_by_queries": history.success_by_queries(res, grid).tolist(),
    })
  paired = np.array([by_size[p].success for p in sizes]).T.astype(int).tolist() if sizes else []
  paired_p = np.array([by_size[p].true_prob for p in sizes]).T if sizes else np.zeros((0, 0))
  # Per image, which population ended with the lowest true-class probability (ties: the first).
  lowest = [int(sizes[j]) for j in paired_p.argmin(1)] if paired_p.size else []
  return {"sizes": sizes, "budgets": np.asarray(grid).tolist(), "rows": rows, "paired": paired,
          "paired_true_prob": paired_p.tolist(), "lowest_true_prob_popsize": lowest}


def generation_curves(attacks, generations: int | None = None, threshold: float | None = None) -> dict:
  """Success and the attacked probability by generation, from the attacks' histories.

  Args:
    attacks: AttackResult or records of one setting (all non-targeted or all targeted).
    threshold: the paper's early-stop threshold (0.05 true class, 0.9
      target; default by the records' kind): ``deep`` counts attacks past it.
  Returns:
    dict with ``generation`` [0..G], ``success`` (share succeeded by each
    generation), ``deep`` (share past the threshold by each generation),
    ``median_objective`` (median attacked probability), ``targeted``, and
    ``late_share``: for each generation g, the share of the final successes
    first found after g.
  """
  res = history.as_result(attacks)
  targeted = bool(len(res)) and res.targets[0] >= 0
  obj = history.objective_history(res, generations)
  g = obj.shape[1] - 1
  paper = AttackConfig()  # the paper's early-stop thresholds
  thr = threshold if threshold is not None else (paper.target_threshold if targeted else paper.true_threshold)
  deep = (obj > thr) if targeted else (obj < thr)
  succ = history.success_by_generation(res, g)
  first = history.first_success_generation(res)
  found = first[first >= 0]
  late = [float(np.mean(found > k)) if len(found) else None for k in range(g + 1)]
  with warnings.catch_warnings():  # all-NaN generations give NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    med = np.nanmedian(obj, axis=0) if len(res) else np.full(g + 1, np.nan)
  return {"generation": list(range(g + 1)), "success": succ.tolist(), "deep": deep.mean(0).tolist(),
          "median_objective": med.tolist(), "targeted": bool(targeted), "late_share": late, "attacks": len(res)}


def random_reach(predict, images, labels, candidates: int = 1000, seed: int = 0, batch_size: int = 512):
  """Which classes random single-pixel changes reach: the paper's initial
  population distribution (x, y uniform, colours N(128, 127)), ``candidates``
  per image, all target classes at once (the Table VII baseline, per class).

  Returns:
    ``(reach bool[N, C], best float32[N, C])``: some candidate is classified as
    class c (False for the true class); each class's highest probability.
  """
  images = np.asarray(images)
  n, h, w = images.shape[:3]
  keys = jax.random.split(jax.random.PRNGKey(seed), n)
  probs = query.probabilities(predict, images, perturb.random_perturbations(keys, candidates, 1, h, w), batch_size)
  c = probs.shape[-1]
  pred = probs.argmax(-1)
  reach = np.stack([(pred == k).any(1) for k in range(c)], axis=1)
  reach[np.arange(n), np.asarray(labels)] = False
  return reach, probs.max(1)


def spearman(a, b) -> dict:
  """Spearman's rank correlation over the finite pairs, with n and a two-sided p-value."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
    return {"rho": None, "p": None, "n": int(ok.sum())}
  from scipy import stats
  r = stats.spearmanr(a[ok], b[ok])
  return {"rho": float(r.statistic), "p": float(r.pvalue), "n": int(ok.sum())}


def imbalance(success, labels, clean, confusion_probs=None, confusion_labels=None, best=None) -> dict:
  """Relates per-(image, target) success to the clean model's confusion and margins.

  Args:
    success: float[N, C] per attacked image and target class: 1/0 (or NaN where
      not attacked; the true-label column is ignored).
    labels: int[N] the images' true labels; clean: float[N, C] their clean
      probabilities.
    confusion_probs, confusion_labels: clean probabilities and labels of the
      images for the soft confusion matrix (default: the attacked images).
    best: optional float[N, C], the highest probability of each target class
      the search reached (a graded signal where successes are rare).
  Returns:
    dict of C x C matrices (rows original class, columns target; NaN where no
    data): ``success`` (rate), ``attacks``, ``margin`` (mean clean
    ``log p_true - log p_target``), ``confusion`` (mean clean ``p_target``
    over images of the original class); per class ``from_rate`` / ``to_rate``;
    Spearman correlations of pair success with margin and confusion
    (``pair_vs_margin``, ``pair_vs_confusion``), of per-(image, target)
    success with margin (``attack_vs_margin``), of pair success with the
    reverse pair's (``symmetry``); success by margin quartile
    (``by_margin_quartile``); with ``best``: ``best`` (C x C mean highest
    target probability reached) and ``attack_best_vs_margin`` (Spearman of
    log best with the clean margin, per (image, target)).
  """
  success = np.asarray(success, np.float64)
  labels = np.asarray(labels)
  clean = np.asarray(clean, np.float64)
  n, c = success.shape
  rows = np.arange(n)
  success = success.copy()
  success[rows, labels] = np.nan
  logp = np.log(np.maximum(clean, 1e-12))
  margin = logp[rows, labels][:, None] - logp  # [N, C]
  rate = np.full((c, c), np.nan)
  count = np.zeros((c, c), int)
  mmat = np.full((c, c), np.nan)
  for a in range(c):
    sel = labels == a
    if not sel.any():
      continue
    ok = np.isfinite(success[sel])
    count[a] = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
      rate[a] = np.where(count[a] > 0, np.nansum(success[sel], 0) / np.maximum(count[a], 1), np.nan)
      mmat[a] = np.where(count[a] > 0, np.where(ok, margin[sel], 0).sum(0) / np.maximum(count[a], 1), np.nan)
  cp = clean if confusion_probs is None else np.asarray(confusion_probs, np.float64)
  cl = labels if confusion_labels is None else np.asarray(confusion_labels)
  conf = np.full((c, c), np.nan)
  for a in range(c):
    if (cl == a).any():
      conf[a] = cp[cl == a].mean(0)
  off = ~np.eye(c, dtype=bool)
  from_rate = [float(np.nanmean(success[labels == a])) if np.isfinite(success[labels == a]).any() else None
               for a in range(c)]
  to_rate = [float(np.nanmean(success[labels != a, a])) if np.isfinite(success[labels != a, a]).any() else None
             for a in range(c)]
  att = np.isfinite(success) & (np.arange(c)[None, :] != labels[:, None])
  m_flat, s_flat = margin[att], success[att]
  quart = []
  if len(m_flat) >= 4:
    edges = np.quantile(m_flat, [0, 0.25, 0.5, 0.75, 1])
    for q in range(4):
      sel = (m_flat >= edges[q]) & ((m_flat <= edges[q + 1]) if q == 3 else (m_flat < edges[q + 1]))
      quart.append({"margin_range": [float(edges[q]), float(edges[q + 1])], "attacks": int(sel.sum()),
                    "success": float(s_flat[sel].mean()) if sel.any() else None})
  sym_a, sym_b = [], []
  for a in range(c):
    for b in range(a + 1, c):
      sym_a.append(rate[a, b])
      sym_b.append(rate[b, a])
  extra = {}
  if best is not None:
    best = np.asarray(best, np.float64)
    bmat = np.full((c, c), np.nan)
    for a in range(c):
      if (labels == a).any():
        bmat[a] = best[labels == a].mean(0)
        bmat[a, a] = np.nan
    extra = {"best": bmat, "attack_best_vs_margin": spearman(np.log(np.maximum(best[att], 1e-12)), m_flat),
             "attack_best": best[att], "attack_margin": m_flat}
  return {
      **extra,
      "success": rate, "attacks": count, "margin": mmat, "confusion": conf,
      "from_rate": from_rate, "to_rate": to_rate,
      "pair_vs_margin": spearman(rate[off], mmat[off]),
      "pair_vs_confusion": spearman(rate[off], conf[off]),
      "attack_vs_margin": spearman(s_flat, m_flat),
      "symmetry": spearman(sym_a, sym_b),
      "by_margin_quartile": quart,
  }


def geometry(pairs: list[dict], pair_success: np.ndarray, from_rate, to_rate) -> dict:
  """Tests the "long, thin boundary" note with probing data.

  Args:
    pairs: ``probe.by_pair`` output (median ``flip_distance``, ``width_distance``
      per (original, adversarial) pair).
    pair_success: float[C, C] success rate per pair (``imbalance``'s).
    from_rate, to_rate: per class (``imbalance``'s).
  Returns:
    dict: ``pair_success_vs_flip`` / ``pair_success_vs_width`` (Spearman over
    probed pairs: the paper predicts negative, images near a thin boundary
    being easy), and per original class ``class_flip_distance`` /
    ``class_width`` (medians over its probes) with ``asymmetry_vs_flip``:
    Spearman of (from_rate - to_rate) with the class's flip distance (the
    paper's note predicts negative: near a boundary, easy from, hard to).
  """
  ps = np.asarray(pair_success, np.float64)
  c = ps.shape[0]
  succ, flip, width = [], [], []
  for p in pairs:
    succ.append(ps[p["original"], p["adversarial"]])
    flip.append(np.nan if p["flip_distance"] is None else p["flip_distance"])
    width.append(np.nan if p["width_distance"] is None else p["width_distance"])
  cls_flip, cls_width = np.full(c, np.nan), np.full(c, np.nan)
  for a in range(c):
    f = [(p["flip_distance"], p["count"]) for p in pairs if p["original"] == a and p["flip_distance"] is not None]
    wd = [(p["width_distance"], p["count"]) for p in pairs if p["original"] == a and p["width_distance"] is not None]
    if f:
      cls_flip[a] = np.average([v for v, _ in f], weights=[k for _, k in f])
    if wd:
      cls_width[a] = np.average([v for v, _ in wd], weights=[k for _, k in wd])
  asym = np.array([np.nan if fr is None or tr is None else fr - tr for fr, tr in zip(from_rate, to_rate)])
  return {
      "pair_success_vs_flip": spearman(succ, flip),
      "pair_success_vs_width": spearman(succ, width),
      "class_flip_distance": cls_flip.tolist(),
      "class_width": cls_width.tolist(),
      "asymmetry": asym.tolist(),
      "asymmetry_vs_flip": spearman(asym, cls_flip),
      "asymmetry_vs_width": spearman(asym, cls_width),
  }


# --------------------------------------------------------------------------
# Building the analysis inputs from attack records, and the files.
# --------------------------------------------------------------------------


def targeted_success(records, ids, num_classes: int) -> np.ndarray:
  """float[N, C]: per image (``ids`` order) and target, 1/0 from targeted
  records (the last record of a pair wins), NaN where not attacked."""
  row = {int(i): k for k, i in enumerate(ids)}
  out = np.full((len(ids), num_classes), np.nan)
  for r in records:
    if r["target"] is not None and r["id"] in row:
      out[row[r["id"]], r["target"]] = float(r["success"])
  return out


def outputs(by_size: dict[int, AttackResult], budget: int, class_names, imb: dict, pair_source: str,
            geo: dict | None, pairs: list[dict] | None, extra_curves: dict | None = None, meta: dict | None = None,
            note: str = "") -> Outputs:
  """``openq_summary.json`` and the figures ``population_sweep``,
  ``generation_curves``, ``imbalance`` and (with probing data) ``geometry``.

  ``extra_curves``: ``{name: attacks}`` more generation curves (e.g. ``--results``)."""
  grid = np.unique(np.round(np.logspace(np.log10(min(by_size)), np.log10(budget), 30)).astype(int))
  sweep = sweep_summary(by_size, grid)
  curves = [{"name": f"P={p}", **generation_curves(res)} for p, res in sorted(by_size.items())
            if len(res) and res.predicted_history.shape[1] > 2]
  curves += [{"name": name, **generation_curves(att)} for name, att in (extra_curves or {}).items() if len(att)]
  out = Outputs()
  out.json["openq_summary.json"] = {**(meta or {}), "note": note, "budget": budget, "question_1_population": sweep,
                                    "question_2_generations": curves,
                                    "question_3_imbalance": {"source": pair_source, **imb}, "geometry": geo}
  out.figures["population_sweep"] = ("population_sweep", {**sweep, "budget": budget, "note": note})
  out.figures["generation_curves"] = ("generation_curves", {"curves": curves, "note": note})
  out.figures["imbalance"] = ("imbalance", {
      "success": imb["success"], "margin": imb["margin"], "confusion": imb["confusion"],
      "pair_vs_margin": imb["pair_vs_margin"], "class_names": class_names, "note": note,
      **{k: imb[k] for k in ("best", "attack_best", "attack_margin", "attack_best_vs_margin") if k in imb},
      "success_title": f"pair success ({pair_source})"})
  if geo is not None and pairs:
    ps = np.asarray(imb["success"], np.float64)
    out.figures["geometry"] = ("geometry", {
        **geo, "class_names": class_names, "note": note,
        "pair_flip": [np.nan if q["flip_distance"] is None else q["flip_distance"] for q in pairs],
        "pair_success": [ps[q["original"], q["adversarial"]] for q in pairs],
        "pair_names": [f"{class_names[q['original']][:4]}>{class_names[q['adversarial']][:4]}" for q in pairs]})
  return out


def corner_success(path, num_classes: int):
  """Pair success from a saved corner search (``corners.npz`` of analysis.vulnerability).

  Returns:
    ``(success float[N, C]`` 1 where one extreme pixel reaches the class,
    ``best float32[N, C]`` each class's highest probability over the corners,
    ``ids int[N])``.
  """
  with np.load(path) as z:
    predicted, labels, ids, best = z["predicted"], z["labels"], z["ids"], z["max_prob"]
  reach = np.stack([(predicted == k).any(axis=(1, 2, 3)) for k in range(num_classes)], axis=1)
  reach[np.arange(len(labels)), labels] = False
  return reach.astype(float), best, ids
