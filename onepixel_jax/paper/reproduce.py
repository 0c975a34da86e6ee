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
# share of images that reach no target class.
PAPER = {
    "iv": {"allconv": (0.1982, 0.6871, 0.7940), "nin": (0.2315, 0.7166, 0.7502), "vgg16": (0.1648, 0.6353, 0.6767)},
    "v": {("allconv", 3): (0.4057, 0.8653, 0.7917), ("nin", 5): (0.4400, 0.8634, 0.7709)},
    "vi": {"allconv": (16000, 123), "nin": (12400, 133), "vgg16": (20000, 145)},
    "vii": {"allconv": 0.4970, "nin": 0.4172, "vgg16": 0.1557},
    "viii": {"allconv": (0.0341, 0.2260, 0.5657), "nin": (0.0478, 0.3520, 0.6008), "vgg16": (0.0563, 0.3140, 0.5358)},
    "fig5_zero": {("allconv", 1): 0.31, ("nin", 1): 0.28, ("vgg16", 1): 0.37, ("allconv", 3): 0.13, ("nin", 5): 0.14},
}


def preset(name: str) -> ml_collections.ConfigDict:
  """``paper``: the paper's protocol (500 test images, population 400, 100
  generations; for GPUs/TPUs). ``cpu``: the same protocol on fewer images
  with a smaller DE budget, sized to finish every table in <= 30 minutes on
  2 CPU cores for the networks that have bundled checkpoints."""
  c = ml_collections.ConfigDict()
  c.name = name
  c.random_trials = 100  # Table VII: 100 random single-pixel changes per image
  c.seed = 0
  c.data = ""  # "" = the CIFAR-10 tarball ($ONEPIXEL_CIFAR10 / ../shared/data) if present, else "samples"
  c.batch_size = 0  # 0 = automatic
  if name == "paper":
    c.num_images = 500
    c.popsize, c.generations = AttackConfig().popsize, AttackConfig().generations
  elif name == "cpu":
    c.num_images, c.popsize, c.generations = 10, 100, 10
  else:
    raise ValueError(f"unknown preset {name!r}; expected 'cpu' or 'paper'")
  return c


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  model: str
  pixels: int = 1
  targeted: bool = True
  random: bool = False  # Table VII's random search instead of DE


def runs_for(tables) -> list[Run]:
  """The runs the given tables need, each once."""
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
  return list(dict.fromkeys(out))


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
  if not run.random:
    spec = job.Job(model=run.model, data=source, num_images=cfg.num_images, targeted=run.targeted,
                   seed=cfg.seed, batch_size=cfg.batch_size or None,
                   config=AttackConfig(pixels=run.pixels, popsize=cfg.popsize, generations=cfg.generations))
    return job.run(spec, d, progress=progress, log=log)
  t0 = time.time()
  model = models.load(run.model)
  images, labels = data.load(source, "test", model)
  ids = data.draw(len(images), cfg.num_images, cfg.seed)
  correct = ids[data.classify(model, images[ids]).argmax(1) == labels[ids]]
  os.makedirs(d, exist_ok=True)
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


def _cell(ours, paper, fmt=_pct):
  return f"{fmt(ours)} ({fmt(paper)})"


def read_runs(tables, out_dir: str, skipped=()) -> dict[str, list[dict]]:
  """``{run name: records}`` of the runs the tables need that exist in ``out_dir``."""
  recs = {}
  for run in runs_for(tables):
    path = os.path.join(out_dir, run.name, "results.jsonl")
    if run.name not in skipped and os.path.exists(path):
      recs[run.name] = results.read(path)
  return recs


def report(tables, cfg, recs: dict[str, list[dict]], skipped: dict, command: str = "",
           figure_files=()) -> str:
  """The markdown of ``tables.md``: ours beside the paper's number in every cell.

  Args:
    recs: ``{run name: records}`` (``read_runs``); skipped: ``{run name: why}``.
    figure_files: paths (relative to the output folder) listed under "Figures".
  """
  def col(run_name, fn):
    r = recs.get(run_name)
    return fn(r) if r else None

  root = str(pathlib.Path(__file__).resolve().parents[2]) + os.sep  # the repository
  paper = preset("paper")

  def note(m):  # paths inside the repository shown relative to it, so the report can be committed
    return f" — *{skipped[m].replace(root, '')}*" if m in skipped else ""

  lines = [
      "# Reproduced tables (ours, with the paper's number in parentheses)",
      "",
      f"Preset `{cfg.name}`: {cfg.num_images} test images drawn (seed {cfg.seed}) from "
      f"`{os.path.basename(cfg.data or default_data())}`, correctly classified ones attacked; "
      f"DE population {cfg.popsize}, at most {cfg.generations} generations "
      f"(paper: {paper.num_images} images, {paper.popsize}, {paper.generations})."
      + (f" Command: `{command}`" if command else ""),
      "",
  ]
  iv = [m for m in CIFAR_MODELS]
  if "4" in tables:
    lines += ["## Table IV: one pixel, targeted protocol", "",
              "| | " + " | ".join(iv) + " |", "|---|" + "---|" * len(iv)]
    for k, label, fn in [(0, "targeted success", metrics.success_rate),
                         (1, "non-targeted success", metrics.nontargeted_from_targeted),
                         (2, "confidence", metrics.confidence)]:
      lines.append(f"| {label} | " + " | ".join(_cell(col(f"iv_{m}", fn), PAPER["iv"][m][k]) for m in iv) + " |")
    lines.append("| images attacked | " + " | ".join(str(col(f"iv_{m}", lambda r: len({x['id'] for x in r})) or "-")
                                               for m in iv) + " |")
    lines += [f"- {m}: not run{note(f'iv_{m}')}" for m in iv if f"iv_{m}" in skipped] + [""]
  if "5" in tables:
    v = [("v_allconv_3px", ("allconv", 3), "AllConv, 3 px"), ("v_nin_5px", ("nin", 5), "NiN, 5 px")]
    lines += ["## Table V: 3 and 5 pixels, targeted protocol", "",
              "| | " + " | ".join(x[2] for x in v) + " |", "|---|---|---|"]
    for k, label, fn in [(0, "targeted success", metrics.success_rate),
                         (1, "non-targeted success", metrics.nontargeted_from_targeted),
                         (2, "confidence", metrics.confidence)]:
      lines.append(f"| {label} | " + " | ".join(_cell(col(n, fn), PAPER["v"][key][k]) for n, key, _ in v) + " |")
    lines += [f"- {n}: not run{note(n)}" for n, _, _ in v if n in skipped] + [""]
  if "6" in tables:
    lines += ["## Table VI: cost and distortion (from the Table IV runs)", "",
              "| | " + " | ".join(iv) + " |", "|---|" + "---|" * len(iv)]
    num = lambda x: "-" if x is None or x != x else f"{x:,.0f}"  # noqa: E731
    lines.append("| mean evaluations per attack | " + " | ".join(
        _cell(col(f"iv_{m}", metrics.mean_queries), PAPER["vi"][m][0], num) for m in iv) + " |")
    lines.append("| mean distortion, one channel (successes) | " + " | ".join(
        _cell(col(f"iv_{m}", metrics.mean_distortion), PAPER["vi"][m][1], num) for m in iv) + " |")
    lines += [f"- Our budget is at most {cfg.popsize * (cfg.generations + 1):,} evaluations per attack "
              f"(paper: {AttackConfig().max_queries:,}).", ""]
  if "7" in tables:
    lines += [f"## Table VII: random search, {cfg.random_trials} random single-pixel changes, non-targeted", "",
              "| | " + " | ".join(iv) + " |", "|---|" + "---|" * len(iv),
              "| success | " + " | ".join(_cell(col(f"vii_{m}", metrics.success_rate), PAPER["vii"][m])
                                       for m in iv) + " |"]
    lines += [f"- {m}: not run{note(f'vii_{m}')}" for m in iv if f"vii_{m}" in skipped] + [""]
  if "8" in tables:
    lines += ["## Table VIII: true non-targeted attacks (minimise the true class), one pixel", "",
              "The paper's Table VIII is on the original CIFAR-10 test set, as ours is (JPEG copy); its "
              "non-targeted column comes from targeted runs.", "",
              "| | " + " | ".join(iv) + " |", "|---|" + "---|" * len(iv),
              "| non-targeted success | " + " | ".join(
                  _cell(col(f"viii_{m}", metrics.success_rate), PAPER["viii"][m][1]) for m in iv) + " |",
              "| confidence | " + " | ".join(
                  _cell(col(f"viii_{m}", metrics.confidence), PAPER["viii"][m][2]) for m in iv) + " |"]
    lines += [f"- {m}: not run{note(f'viii_{m}')}" for m in iv if f"viii_{m}" in skipped] + [""]

  if figure_files:
    lines += ["## Figures", ""] + [f"- `{f}`" for f in figure_files] + [""]
  return "\n".join(lines)


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


def write_report(tables, cfg, out_dir: str, skipped: dict, command: str = "") -> str:
  """Writes ``out_dir/figures`` (Figs. 5-7: JSON, PNG, PDF) and ``out_dir/tables.md``
  from the runs in ``out_dir``; returns the markdown."""
  recs = read_runs(tables, out_dir, skipped)
  listed = []
  for name, (kind, fig) in figure_data(tables, recs).items():
    figures.save(os.path.join(out_dir, "figures"), name, kind, fig)
    listed.append(os.path.join("figures", name + ".png"))
  listed += [os.path.join(n, "examples.png") for n, r in recs.items()
             if r and r[0]["target"] is not None and os.path.exists(os.path.join(out_dir, n, "examples.png"))]
  md = report(tables, cfg, recs, skipped, command, listed)
  with open(os.path.join(out_dir, "tables.md"), "w") as f:
    f.write(md)
  return md


def reproduce(tables, cfg, out_dir: str, progress: bool = True, log=print, command: str = "") -> str:
  """Runs every run the tables need (``run_all``), then writes the report (``write_report``)."""
  skipped = run_all(tables, cfg, out_dir, progress, log)
  return write_report(tables, cfg, out_dir, skipped, command)


def run_all(tables, cfg, out_dir: str, progress: bool = True, log=print) -> dict[str, str]:
  """Makes (or resumes) every run the tables need, skipping networks without
  checkpoints; returns ``{run name: why it was skipped}``."""
  skipped = {}
  reasons = {}
  for run in runs_for(tables):
    if run.model not in reasons:
      reasons[run.model] = available(run.model)
    if reasons[run.model]:
      skipped[run.name] = reasons[run.model]
      log(f"[{run.name}] skipped: {reasons[run.model]}")
      continue
    log(f"[{run.name}] running")
    execute(run, cfg, out_dir, progress=progress, log=log)
  return skipped
