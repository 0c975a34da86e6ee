"""Reproduce the paper's Tables IV-VIII and Figures 1, 5-7 (Su, Vargas, Sakurai 2019).

Every table is built from *runs*; a run is one main-job directory
(``job.run``: resumable results.jsonl) or, for Table VII, a JSONL of
random-search records. Runs shared by several tables (IV and VI) are made
once. ``report`` turns the runs' records into the markdown of ``tables.md``
(ours beside the paper's number in every cell) and ``figure_data`` into the
data of Figs. 5-7; ``write_report`` writes both (``figures.save``: JSON beside
each drawing, so ``analysis.redraw`` redraws them without rerunning anything).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import ml_collections
import numpy as np

from onepixel_jax import data, figures, job, models, results
from onepixel_jax.attack import AttackConfig
from onepixel_jax.paper import metrics, random_search

CIFAR_MODELS = ("allconv", "nin", "vgg16")
TABLES = ("4", "5", "6", "7", "8")

# The paper's numbers (final version; PAPER.md): the one copy in the package.
# iv: (targeted, non-targeted, confidence); v: the same for (model, pixels);
# vi: (mean evaluations per attack, mean distortion per channel); vii: random
# search success; viii: (targeted, non-targeted, confidence); fig5_zero: the
# share of images that reach no target class; accuracy: the networks' test
# accuracy (PAPER.md, "Test accuracy in the paper").
PAPER = {
    "accuracy": {"allconv": 0.856, "nin": 0.872, "vgg16": 0.833},
    "iv": {"allconv": (0.1982, 0.6871, 0.7940), "nin": (0.2315, 0.7166, 0.7502), "vgg16": (0.1648, 0.6353, 0.6767)},
    "v": {("allconv", 3): (0.4057, 0.8653, 0.7917), ("nin", 5): (0.4400, 0.8634, 0.7709)},
    "vi": {"allconv": (16000, 123), "nin": (12400, 133), "vgg16": (20000, 145)},
    "vii": {"allconv": 0.4970, "nin": 0.4172, "vgg16": 0.1557},
    "viii": {"allconv": (0.0341, 0.2260, 0.5657), "nin": (0.0478, 0.3520, 0.6008), "vgg16": (0.0563, 0.3140, 0.5358)},
    "fig5_zero": {("allconv", 1): 0.31, ("nin", 1): 0.28, ("vgg16", 1): 0.37, ("allconv", 3): 0.13, ("nin", 5): 0.14},
}


PRESETS = ("paper", "cpu-paper", "cpu")


def preset(name: str) -> ml_collections.ConfigDict:
  """``paper``: the paper's protocol (500 test images, population 400, 100
  generations; for GPUs/TPUs). ``cpu-paper``: the paper's DE exactly
  (population 400, 100 generations, F = 0.5, its early stop) on fewer images:
  100 correctly classified test images per network for Tables VII and VIII,
  30 for Tables IV and V, the first ones of one seeded random order (so the
  same images for every table of a network). ``cpu``: 10 images drawn and a
  smaller DE budget (population 100, 10 generations), a quick check.

  ``num_images`` is how many images are drawn (the correctly classified ones
  are attacked); where ``attacked_targeted`` / ``attacked_nontargeted`` are
  set they replace it by an exact count of attacked images."""
  c = ml_collections.ConfigDict()
  c.name = name
  c.random_trials = 100  # Table VII: 100 random single-pixel changes per image
  c.seed = 0
  c.data = ""  # "" = the CIFAR-10 tarball ($ONEPIXEL_CIFAR10 / ../shared/data) if present, else "samples"
  c.batch_size = 0  # 0 = automatic
  c.attacked_targeted = 0  # 0 = attack the correct ones among num_images drawn
  c.attacked_nontargeted = 0
  paper = AttackConfig()
  if name == "paper":
    c.num_images = 500
    c.popsize, c.generations = paper.popsize, paper.generations
  elif name == "cpu-paper":
    c.num_images = 0
    c.popsize, c.generations = paper.popsize, paper.generations
    c.attacked_targeted, c.attacked_nontargeted = 30, 100
  elif name == "cpu":
    c.num_images, c.popsize, c.generations = 10, 100, 10
  else:
    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
  return c


def planned_images(run, cfg) -> int | None:
  """How many images ``run`` attacks under ``cfg`` when that is fixed in
  advance (``attacked_*``), else None (the correct ones among those drawn)."""
  n = cfg.attacked_targeted if run.targeted and not run.random else cfg.attacked_nontargeted
  return n or None


def planned_attacks(run, cfg) -> int:
  """Attacks (random searches: images) ``run`` makes under ``cfg``: 9 per
  image when targeted (every other class); all drawn images where the
  attacked ones are not fixed in advance (an upper bound)."""
  images = planned_images(run, cfg) or cfg.num_images
  return images * (9 if run.targeted and not run.random else 1)


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  model: str
  pixels: int = 1
  targeted: bool = True
  random: bool = False  # Table VII's random search instead of DE


def runs_for(tables, networks=CIFAR_MODELS) -> list[Run]:
  """The runs the given tables need on the given networks, each once."""
  unknown = sorted(set(networks) - set(CIFAR_MODELS))
  if unknown:
    raise ValueError(f"unknown network {unknown[0]!r}; expected some of {', '.join(CIFAR_MODELS)}")
  out = []
  for t in tables:
    if t in ("4", "6"):
      out += [Run(f"iv_{m}", m) for m in CIFAR_MODELS]
    elif t == "5":
      out += [Run("v_allconv_3px", "allconv", 3), Run("v_nin_5px", "nin", 5)]
    elif t == "7":
      out += [Run(f"vii_{m}", m, random=True) for m in CIFAR_MODELS]
    elif t == "8":
      out += [Run(f"viii_{m}", m, targeted=False) for m in CIFAR_MODELS]
    else:
      raise ValueError(f"unknown table {t!r}; expected one of {TABLES} or 'all'")
  return [run for run in dict.fromkeys(out) if run.model in networks]


def default_data() -> str:
  p = data.default_tarball()
  return str(p) if p.exists() else "samples"


def available(model: str):
  """None if the model loads, else the one-line reason it does not."""
  try:
    models.load(model)
    return None
  except (ValueError, OSError) as e:
    return str(e).splitlines()[0]


def execute(run: Run, cfg, out_dir: str, progress: bool = True, log=print):
  """Makes (or resumes) one run in ``out_dir/run.name``."""
  d = os.path.join(out_dir, run.name)
  source = cfg.data or default_data()
  count = planned_images(run, cfg)
  drawn = None if count else cfg.num_images
  if not run.random:
    spec = job.Job(model=run.model, data=source, num_images=drawn, num_correct=count,
                   targeted=run.targeted, seed=cfg.seed, batch_size=cfg.batch_size or None,
                   config=AttackConfig(pixels=run.pixels, popsize=cfg.popsize, generations=cfg.generations))
    return job.run(spec, d, progress=progress, log=log)
  t0 = time.time()
  model = models.load(run.model)
  images, labels = data.load(source, "test", model)
  settings = {"model": run.model, "data": source, "random_trials": cfg.random_trials, "seed": cfg.seed,
              "num_correct": count, "num_images": drawn, "weights_sha256": job.weights_sha256(model)}
  results.check_resumable(os.path.join(d, "config.json"), settings)  # never mix records of other weights
  if count:
    ids, probs = data.draw_correct(model, images, labels, count, cfg.seed)
  else:
    ids = data.draw(len(images), drawn, cfg.seed)
    probs = data.classify(model, images[ids])
  correct = ids[probs.argmax(1) == labels[ids]]
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, "config.json"), "w") as f:
    json.dump(settings, f, indent=1)
  path = os.path.join(d, "results.jsonl")
  results.repair(path)
  done = {r["id"] for r in results.read(path)}
  todo = np.asarray([i for i in correct if i not in done], int)
  if len(todo):
    for rec in random_search.records(model, images[todo], labels[todo], todo, cfg.random_trials, seed=cfg.seed):
      results.append(path, [{**rec, "model": run.model}])
  recs = results.read(path)
  summary = {"model": run.model, "random_trials": cfg.random_trials, "num_images_drawn": int(len(ids)),
             **metrics.summary(recs), "wall_seconds": round(time.time() - t0, 1)}
  with open(os.path.join(d, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


def _pct(x):
  return "-" if x is None or x != x else f"{100 * x:.2f}%"


def _num(x):
  return "-" if x is None or x != x else f"{x:,.0f}"


def _row(network: str, quantity: str, est, paper, fmt, unit: str, planned: int | None = None) -> str:
  """One table row: ours, the 95% interval, n (marked when the run is still
  incomplete), the paper's number and whether it lies inside our interval."""
  if est is None:
    return f"| {network} | {quantity} | - | - | 0 | {fmt(paper)} | - |"
  value, (lo, hi), n = est
  interval = "-" if lo != lo else f"{fmt(lo)} - {fmt(hi)}"
  inside = "-" if lo != lo else ("yes" if lo <= paper <= hi else "**no**")
  count = f"{n:,} {unit}"
  if planned and n < planned:
    count += f" of {planned:,} (incomplete)"
  return f"| {network} | {quantity} | {fmt(value)} | {interval} | {count} | {fmt(paper)} | {inside} |"


# Table V's runs: (run name, PAPER["v"] key, row label).
_V_RUNS = (("v_allconv_3px", ("allconv", 3), "allconv, 3 px"), ("v_nin_5px", ("nin", 5), "nin, 5 px"))


def _classes(counts, top: int = 2) -> str:
  """The ``top`` classes with the most counts, as "cat 5, deer 4"."""
  order = [c for c in np.argsort(-np.asarray(counts), kind="stable")[:top] if counts[c]]
  return ", ".join(f"{data.CIFAR10_CLASSES[c]} {counts[c]}" for c in order) or "-"


def _profile_row(label: str, prof: dict, paper) -> str:
  """One row of "Under the targeted cells": ``prof`` is ``metrics.targeted_profile``,
  ``paper`` the paper's (targeted, non-targeted, confidence) of that table."""
  per_image = paper[0] * (len(data.CIFAR10_CLASSES) - 1)
  two = lambda x: "-" if x != x else f"{x:.2f}"
  return (f"| {label} | {prof['fooled']} of {prof['images']} | {two(prof['targets_per_image'])} ({per_image:.2f}) "
          f"| {two(prof['targets_per_fooled_image'])} ({per_image / paper[1]:.2f}) "
          f"| {prof['stopped_early']} of {prof['attacks']} | {_pct(prof['max_target_prob'])} "
          f"| {_classes(prof['from_class'])} | {_classes(prof['to_class'])} "
          f"| {prof['corner_pixels']} of {prof['success_pixels']} "
          f"| {_pct(prof.get('clean_true_prob_fooled'))} / {_pct(prof.get('clean_true_prob_not_fooled'))} |")


_HEADER = ["| network | quantity | ours | 95% interval | n | paper | paper inside? |",
           "|---|---|---|---|---|---|---|"]


def read_runs(tables, out_dir: str, skipped=()) -> dict[str, list[dict]]:
  """``{run name: records}`` of the runs the tables need that exist in ``out_dir``."""
  recs = {}
  for run in runs_for(tables):
    path = os.path.join(out_dir, run.name, "results.jsonl")
    if run.name not in skipped and os.path.exists(path):
      recs[run.name] = results.read(path)
  return recs


def network_accuracies(names) -> dict[str, tuple[float, float | None]]:
  """``{name: (test accuracy, the paper's)}`` of the bundled networks among
  ``names``: ours from their checkpoints' metadata (``models.metadata``), the
  paper's from ``PAPER`` (None for networks it did not train); networks
  without a bundled checkpoint or a recorded accuracy are left out."""
  out = {}
  for name in names:
    meta = models.metadata(name)
    if meta.get("test_accuracy") is not None:
      out[name] = (meta["test_accuracy"], PAPER["accuracy"].get(name))
  return out


def _networks_line(accuracies: dict) -> str:
  """One sentence naming each attacked network's accuracy beside the paper's."""
  def one(name, ours, paper):
    if paper is None:
      return f"{name} {100 * ours:.2f}%"
    below = ": below the paper's" if ours < paper else ""
    return f"{name} {100 * ours:.2f}% (paper {100 * paper:.1f}%{below})"
  return ("Networks attacked, as bundled (test accuracy from each checkpoint's metadata, "
          "`onepixel_jax/weights/<name>.json`): "
          + ", ".join(one(n, *a) for n, a in accuracies.items())
          + ". Every number below describes these networks, not the paper's.")


def report(tables, cfg, recs: dict[str, list[dict]], skipped: dict, command: str = "",
           figure_files=(), earlier: dict | None = None, accuracies: dict | None = None,
           clean: dict | None = None) -> str:
  """The markdown of ``tables.md``: in every row ours, its 95% interval
  (Wilson for rates, normal for means), n, the paper's number and whether the
  paper's number lies inside our interval; rows of runs still going carry
  their count against the planned one. Under Tables IV-V, one row per
  targeted run counts what lies under its cells (``metrics.targeted_profile``:
  targets per image, early stops, the highest target probability, classes,
  colour-cube corners).

  Args:
    recs: ``{run name: records}`` (``read_runs``); skipped: ``{run name: why}``.
    figure_files: paths (relative to the output folder) listed under "Figures".
    earlier: ``{run name: (the run's weights sha256, the bundled one's)}`` for
      runs made with weights other than those bundled now (``earlier_weights``):
      their rows are marked and listed, so a table never passes off an earlier
      network's numbers as the current one's.
    accuracies: ``{network: (test accuracy, the paper's)}`` (``network_accuracies``),
      named in one line above the tables, each marked where it is below the paper's.
    clean: ``{run name: {image id: clean true-class probability}}``
      (``clean_true_probs``); the targeted runs' rows under the targeted
      cells give its median over fooled and unfooled images ("-" without
      it), and Table VIII gains a table of it per network.
  """
  earlier, clean = earlier or {}, clean or {}
  est = {name: metrics.estimates(r) for name, r in recs.items() if r}
  runs = {run.name: run for run in runs_for(tables)}
  root = str(pathlib.Path(__file__).resolve().parents[2]) + os.sep  # the repository
  paper = preset("paper")

  def planned(name, per_image=1):
    n = planned_images(runs[name], cfg)
    return n and n * per_image

  def rows(name, network, quantities):
    if name in skipped:  # paths inside the repository shown relative to it, so the report can be committed
      return [f"| {network} | not run: {skipped[name].replace(root, '')} | | | | | |"]
    e = est.get(name, {})
    if name in earlier:
      network += " (earlier weights)"
    return [_row(network, label, e.get(key), value, fmt, unit, planned(name, per))
            for label, key, value, fmt, unit, per in quantities]

  def targeted_quantities(p):
    return [("targeted success", "success", p[0], _pct, "attacks", 9),
            ("non-targeted success", "nontargeted_from_targeted", p[1], _pct, "images", 1),
            ("confidence", "confidence", p[2], _pct, "successes", 0)]

  draw = (f"{cfg.attacked_nontargeted} (Tables VII, VIII) and {cfg.attacked_targeted} (Tables IV-VI) "
          f"correctly classified test images per network, the first of one random order (seed {cfg.seed})"
          if cfg.attacked_targeted else
          f"{cfg.num_images} test images drawn (seed {cfg.seed}), the correctly classified ones attacked")
  lines = [
      "# Reproduced tables",
      "",
      f"Preset `{cfg.name}`: {draw}, from `{os.path.basename(cfg.data or default_data())}`; "
      f"DE population {cfg.popsize}, at most {cfg.generations} generations "
      f"(paper: {paper.num_images} images, {paper.popsize}, {paper.generations}). Intervals: 95%, "
      "Wilson for rates, normal for means; \"paper inside?\" says whether the paper's number lies "
      "in ours." + (f" Last written by: `{command}`" if command else ""),
      "",
  ]
  if accuracies:
    lines += [_networks_line(accuracies), ""]
  if earlier:
    lines += ["Rows marked \"(earlier weights)\" come from runs made with other weights than the "
              "networks bundled now (weights sha256 of the run, then of the bundled network): "
              + "; ".join(f"`{n}` {old[:12]}, now {new[:12]}" for n, (old, new) in sorted(earlier.items()))
              + ". To refresh one, move its folder away and run its table again.", ""]
  if "4" in tables:
    lines += ["## Table IV: one pixel, targeted protocol", "", *_HEADER]
    for m in CIFAR_MODELS:
      lines += rows(f"iv_{m}", m, targeted_quantities(PAPER["iv"][m]))
    lines.append("")
  if "5" in tables:
    lines += ["## Table V: 3 and 5 pixels, targeted protocol", "", *_HEADER]
    for name, key, label in _V_RUNS:
      lines += rows(name, label, targeted_quantities(PAPER["v"][key]))
    lines.append("")
  targeted = [(f"iv_{m}", f"{m}, 1 px (IV)", PAPER["iv"][m]) for m in CIFAR_MODELS if "4" in tables or "6" in tables]
  targeted += [(name, f"{label} (V)", PAPER["v"][key]) for name, key, label in _V_RUNS if "5" in tables]
  budget = cfg.popsize * (cfg.generations + 1)
  profile_rows = [_profile_row(label + (" (earlier weights)" if name in earlier else ""),
                               metrics.targeted_profile(recs[name], budget, AttackConfig().target_threshold,
                                                        clean.get(name)), p)
                  for name, label, p in targeted if name not in skipped and recs.get(name)
                  and all("target_prob" in r and "perturbation" in r for r in recs[name])]
  if profile_rows:
    lines += ["## Under the targeted cells", "",
              f"Counted from the same records. The paper's targets per image are its targeted rate x "
              f"{len(data.CIFAR10_CLASSES) - 1} targets, per fooled image that over its non-targeted rate. "
              f"Its early stop ends an attack once the target's probability passes "
              f"{AttackConfig().target_threshold:.0%}; \"highest\" is the most any attack's best candidate gave "
              "its target. Corners: successful pixels whose every channel is 0 or 255. Clean true-class "
              "probability: the network's, on the unchanged image, median over the fooled / unfooled "
              "images (computed when the tables are written; \"-\" where the run's data or network "
              "is not at hand).", "",
              "| run | images fooled | targets per image (paper) | per fooled image (paper) | stopped early | "
              "highest target probability | successes start most from | end most at | corner pixels | "
              "clean true-class probability, fooled / not |",
              "|---|---|---|---|---|---|---|---|---|---|", *profile_rows, ""]
  if "6" in tables:
    lines += ["## Table VI: cost and distortion (from the Table IV runs)", "", *_HEADER]
    for m in CIFAR_MODELS:
      lines += rows(f"iv_{m}", m, [
          ("mean evaluations per attack", "mean_queries", PAPER["vi"][m][0], _num, "attacks", 9),
          ("mean distortion, one channel (successes)", "mean_distortion", PAPER["vi"][m][1], _num,
           "successes", 0)])
    lines += ["", f"Our budget is at most {cfg.popsize * (cfg.generations + 1):,} evaluations per attack "
              f"(paper: {AttackConfig().max_queries:,}).", ""]
  if "7" in tables:
    lines += [f"## Table VII: random search, {cfg.random_trials} random single-pixel changes, non-targeted",
              "", *_HEADER]
    for m in CIFAR_MODELS:
      lines += rows(f"vii_{m}", m, [("success", "success", PAPER["vii"][m], _pct, "images", 1)])
    lines.append("")
  if "8" in tables:
    lines += ["## Table VIII: true non-targeted attacks (minimise the true class), one pixel", "",
              "The paper's Table VIII is on the original CIFAR-10 test set, ours on its JPEG copy; its "
              "non-targeted column comes from targeted runs.", "", *_HEADER]
    for m in CIFAR_MODELS:
      lines += rows(f"viii_{m}", m, [
          ("non-targeted success", "success", PAPER["viii"][m][1], _pct, "images", 1),
          ("confidence", "confidence", PAPER["viii"][m][2], _pct, "successes", 0)])
    lines.append("")
    sure = [(m, metrics.clean_true_prob_summary(recs[f"viii_{m}"], clean[f"viii_{m}"]))
            for m in CIFAR_MODELS if recs.get(f"viii_{m}") and f"viii_{m}" in clean]
    if sure:
      lines += ["How sure each network was of the attacked images before any change: its clean "
                "probability of the true class (a forward pass when the tables are written).", "",
                "| network | median (mean), attacked images | median, fooled | median, not fooled |",
                "|---|---|---|---|"]
      lines += [f"| {m} | {_pct(c['clean_true_prob_median'])} ({_pct(c['clean_true_prob_mean'])}) "
                f"| {_pct(c['clean_true_prob_fooled'])} | {_pct(c['clean_true_prob_not_fooled'])} |"
                for m, c in sure]
      lines.append("")
  if figure_files:
    lines += ["## Figures", ""] + [f"- `{f}`" for f in figure_files] + [""]
    # The same words whichever runs' files this machine holds: the report
    # depends on the results alone.
    lines += ["Each run's folder also gets `examples.png` (Fig. 1: originals beside their "
              "adversarial images), written by the run and never committed: it shows CIFAR-10 "
              "test images.", ""]
  return "\n".join(lines)


def estimate_hours(tables, cfg, rates: dict, done: dict[str, list[dict]] | None = None) -> dict[str, dict]:
  """CPU (or device) hours of each run the tables need, before running it.

  ``rates``: attack queries per second per ``(model, pixels)`` (e.g. from
  ``benchmark.attack_queries_per_s`` with that many pixels), or per model
  name for every pixel count. ``done``: the records already in each run
  (:func:`read_runs`); only the attacks still to run are counted. A DE
  attack is expected to cost the mean queries of the run's finished attacks;
  before any, of the same network's finished DE attacks with the same
  targeting in other runs; before those, of any network's (the bundled
  networks share one training recipe, whose label smoothing decides how
  often the paper's early stop fires); before those, the paper's mean
  evaluations per attack (Table VI: its networks stopped early far more
  often than the bundled ones, whose Table IV attacks all used the whole
  budget). It costs
  at most the budget's ``max_queries``; a random search costs
  ``random_trials`` per image. Where
  a preset draws images rather than counting attacked ones, all drawn images
  are counted (an upper bound). Returns ``{run name: {attacks, remaining,
  expected_hours, max_hours}}`` plus ``"total"``; runs of models without a
  rate are left out.
  """
  budget = AttackConfig(popsize=cfg.popsize, generations=cfg.generations).max_queries
  done = done or {}
  kin, alike = {}, {}  # (model, targeted) / targeted -> queries of the finished DE attacks of those runs
  for run in runs_for(TABLES):
    if not run.random:
      queries = [r["queries"] for r in done.get(run.name, [])]
      kin.setdefault((run.model, run.targeted), []).extend(queries)
      alike.setdefault(run.targeted, []).extend(queries)
  out, total = {}, {"attacks": 0, "remaining": 0, "expected_hours": 0.0, "max_hours": 0.0}
  for run in runs_for(tables):
    rate = rates.get((run.model, run.pixels), rates.get(run.model))
    if not rate:
      continue
    attacks, finished = planned_attacks(run, cfg), done.get(run.name, [])
    if run.random:
      expected = most = cfg.random_trials
    else:
      most = budget
      queries = ([r["queries"] for r in finished] or kin.get((run.model, run.targeted))
                 or alike.get(run.targeted))
      expected = np.mean(queries) if queries else min(PAPER["vi"][run.model][0], budget)
    remaining = max(attacks - len(finished), 0)
    rec = {"attacks": attacks, "remaining": remaining, "expected_hours": remaining * expected / rate / 3600,
           "max_hours": remaining * most / rate / 3600}
    out[run.name] = {k: round(float(v), 2) if isinstance(v, float) else v for k, v in rec.items()}
    for k in total:
      total[k] += rec[k]
  out["total"] = {k: round(float(v), 2) if isinstance(v, float) else v for k, v in total.items()}
  return out


def figure_data(tables, recs: dict[str, list[dict]]) -> dict[str, tuple[str, dict]]:
  """``{figure name: (kind, data)}`` for ``figures.save``: Fig. 5 (targets
  reached per image, one bar group per targeted run) and Figs. 6-7 (original
  -> target heat map per targeted run). Model and pixels come from the run
  definitions (``runs_for``), so older records without those fields work."""
  by_name = {run.name: run for run in runs_for(tables)}
  targeted = {n: r for n, r in recs.items() if r and r[0]["target"] is not None}
  out = {}
  if targeted:
    runs = {n: {"counts": metrics.targets_histogram(r).tolist(),
                "paper_zero": PAPER["fig5_zero"].get((by_name[n].model, by_name[n].pixels))}
            for n, r in targeted.items()}
    out["fig5_targets"] = ("targets_histogram", {"runs": runs})
  for n, r in targeted.items():
    out[f"fig6_pairs_{n}"] = ("pair_heatmap", {"title": f"Figs. 6-7: original -> target successes ({n})",
                                               "class_names": list(data.CIFAR10_CLASSES),
                                               "counts": metrics.pair_counts(r).tolist()})
  return out


def tables_with_results(out_dir: str) -> list[str]:
  """The tables (of ``TABLES``) some of whose runs have a results file in ``out_dir``."""
  return [t for t in TABLES
          if any(os.path.exists(os.path.join(out_dir, run.name, "results.jsonl")) for run in runs_for([t]))]


def earlier_weights(out_dir: str, names) -> dict[str, tuple[str, str]]:
  """``{run name: (its weights sha256, the bundled network's)}`` for the runs
  among ``names`` whose ``config.json`` records weights other than those
  ``models.load`` gives now (runs without a record, or of networks that do
  not load, are left out)."""
  runs = {run.name: run for run in runs_for(TABLES)}
  now, out = {}, {}
  for name in names:
    path = os.path.join(out_dir, name, "config.json")
    if not os.path.exists(path):
      continue
    with open(path) as f:
      made = json.load(f).get("weights_sha256")
    model = runs[name].model
    if made and model not in now:
      try:
        now[model] = job.weights_sha256(models.load(model))
      except (ValueError, OSError):  # not loadable here: nothing to compare with
        now[model] = None
    if made and now[model] and made != now[model]:
      out[name] = (made, now[model])
  return out


def clean_true_probs(out_dir: str, recs: dict[str, list[dict]], skip=()) -> dict[str, dict[int, float]]:
  """``{run name: {image id: the bundled network's clean probability of the
  true class}}`` for the DE runs in ``recs`` (not in ``skip``), on the images of
  the data source each run's ``config.json`` records. A run whose network or
  data does not load here is left out; so is one whose records' labels
  disagree with that data's (other data than the run's)."""
  runs = {run.name: run for run in runs_for(TABLES)}
  out, loaded = {}, {}
  for name, records in recs.items():
    path = os.path.join(out_dir, name, "config.json")
    if name in skip or runs[name].random or not records or not os.path.exists(path):
      continue  # Table VII's random search: no table shows its images' clean probabilities
    with open(path) as f:
      source = json.load(f).get("data")
    ids = sorted({r["id"] for r in records})
    key = (runs[name].model, source)
    if key not in loaded:
      try:
        model = models.load(key[0])
        loaded[key] = (model, *data.load(source, "test", model))
      except (ValueError, OSError):
        loaded[key] = None
    if loaded[key] is None:
      continue
    model, images, labels = loaded[key]
    if max(ids) >= len(labels) or any(labels[r["id"]] != r["label"] for r in records):
      continue
    probs = data.classify(model, images[ids])
    out[name] = {i: float(probs[k, labels[i]]) for k, i in enumerate(ids)}
  return out


def write_report(tables, cfg, out_dir: str, skipped: dict, command: str = "") -> str:
  """Writes ``out_dir/figures`` (Figs. 5-7: JSON, PNG, PDF) and ``out_dir/tables.md``
  from the runs in ``out_dir``; returns the markdown. Rows of runs made with
  other weights than the bundled ones are marked (``earlier_weights``). The report covers
  ``tables`` and every other table with results there
  (``tables_with_results``), so a run of one table keeps the others in ``tables.md``.
  No attack runs: the one computation is a forward pass of each network on its
  runs' clean images (``clean_true_probs``)."""
  tables = [t for t in TABLES if t in set(tables) | set(tables_with_results(out_dir))]
  recs = read_runs(tables, out_dir, skipped)
  listed = []
  for name, (kind, fig) in figure_data(tables, recs).items():
    figures.save(os.path.join(out_dir, "figures"), name, kind, fig)
    listed.append(os.path.join("figures", name + ".png"))
  earlier = earlier_weights(out_dir, recs)
  bundled = {run.model for run in runs_for(tables) if recs.get(run.name) and run.name not in earlier}
  md = report(tables, cfg, recs, skipped, command, listed, earlier,
              network_accuracies([m for m in CIFAR_MODELS if m in bundled]),
              clean_true_probs(out_dir, recs, skip=earlier))
  with open(os.path.join(out_dir, "tables.md"), "w") as f:
    f.write(md)
  return md


def reproduce(tables, cfg, out_dir: str, progress: bool = True, log=print, command: str = "",
              networks=CIFAR_MODELS) -> str:
  """Runs every run the tables need on ``networks`` (``run_all``), then
  writes the report of every network's results in ``out_dir`` (``write_report``)."""
  skipped = run_all(tables, cfg, out_dir, progress, log, networks)
  return write_report(tables, cfg, out_dir, skipped, command)


def run_all(tables, cfg, out_dir: str, progress: bool = True, log=print,
            networks=CIFAR_MODELS) -> dict[str, str]:
  """Makes (or resumes) every run the tables need on ``networks``, skipping
  networks without checkpoints; returns ``{run name: why it was skipped}``."""
  skipped = {}
  reasons = {}
  for run in runs_for(tables, networks):
    if run.model not in reasons:
      reasons[run.model] = available(run.model)
    if reasons[run.model]:
      skipped[run.name] = reasons[run.model]
      log(f"[{run.name}] skipped: {reasons[run.model]}")
      continue
    log(f"[{run.name}] running")
    execute(run, cfg, out_dir, progress=progress, log=log)
  return skipped
