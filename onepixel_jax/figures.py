"""Every figure of the package; the only library module that draws.

* ``examples``: originals above their adversarial images, like the paper's
  Fig. 1 (the main job's ``examples.png``).
* Figures drawn only from their data (JSON) so they can be redrawn: the
  paper's Figs. 5-7 (``paper.reproduce``) and the analyses'.
  ``save(out_dir, name, kind, data)`` writes ``name.json`` (the numbers, plus
  ``"figure": kind``), then draws it into ``name.png`` and ``name.pdf``;
  ``redraw(path)`` draws saved figures again without rerunning anything
  (``python -m analysis.redraw FILE.json|FOLDER``). NaN is stored as JSON
  ``null``.

matplotlib is imported only when something is drawn, and only its
object-oriented API is used (``matplotlib.figure.Figure``): no pyplot state,
no global backend switch, so importing this module (or the library) never
touches matplotlib.
"""

from __future__ import annotations

import glob
import json
import math
import os

import numpy as np

from onepixel_jax import perturb

DRAW = {}


def _subplots(nrows=1, ncols=1, figsize=None, **kwargs):
  """``(Figure, axes)`` without pyplot: saving picks the Agg canvas by file type."""
  from matplotlib.figure import Figure
  fig = Figure(figsize=figsize)
  return fig, fig.subplots(nrows, ncols, **kwargs)


def _cmap(name: str):
  import matplotlib
  return matplotlib.colormaps[name]


def _drawer(kind):
  def register(fn):
    DRAW[kind] = fn
    return fn
  return register


def jsonable(x):
  """NumPy arrays and scalars to lists and numbers, NaN/inf to None."""
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return jsonable(x.tolist())
  if isinstance(x, (np.bool_, bool)):
    return bool(x)
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (float, np.floating)):
    return float(x) if math.isfinite(x) else None
  return x


def arr(x) -> np.ndarray:
  """A JSON list (None for NaN) back to a float array."""
  return np.array([[np.nan if v is None else v for v in row] for row in x] if x and isinstance(x[0], list)
                  else [np.nan if v is None else v for v in x], np.float64)


def write_json(path, data):
  with open(path, "w") as f:
    json.dump(jsonable(data), f, indent=1)
    f.write("\n")


FORMATS = (".png", ".pdf")


def save(out_dir, name: str, kind: str, data: dict, formats=FORMATS) -> list[str]:
  """Writes ``name.json`` then ``name.png`` and ``name.pdf`` drawn from it; returns the paths."""
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, name)
  data = jsonable(dict(data, figure=kind))
  write_json(stem + ".json", data)
  return [stem + ".json"] + draw(data, stem, formats)


def draw(data: dict, stem: str, formats=FORMATS) -> list[str]:
  """Draws a figure's data (``data["figure"]`` names its kind) into ``stem`` + each of ``formats``."""
  kind = data.get("figure")
  if kind not in DRAW:
    raise ValueError(f"unknown figure kind {kind!r}; known: {', '.join(sorted(DRAW))}")
  fig = DRAW[kind](data)
  paths = []
  for ext in formats:
    # No creation date in a PDF: redrawing the same data writes the same bytes (no churn in committed figures).
    fig.savefig(stem + ext, dpi=100 if ext == ".png" else None, bbox_inches="tight",
                metadata={"CreationDate": None} if ext == ".pdf" else None)
    paths.append(stem + ext)
  return paths


def redraw(path) -> list[str]:
  """Draws a saved figure's PNG and PDF again from its JSON; a folder: every figure JSON in it."""
  if os.path.isdir(path):
    found = []
    for p in sorted(glob.glob(os.path.join(path, "*.json"))):
      with open(p) as f:
        if "figure" in json.load(f):
          found.append(p)
    if not found:
      raise ValueError(f"no figure .json files in {path}")
    return [out for p in found for out in redraw(p)]
  with open(path) as f:
    data = json.load(f)
  return draw(data, os.path.splitext(str(path))[0])


def _label(names, c):
  return names[c] if names is not None and 0 <= c < len(names) else str(c)


def examples(images, records, class_names=None, path=None, max_examples: int = 8, title: str | None = None):
  """Original above adversarial image for up to ``max_examples`` records (the paper's Fig. 1).

  Args:
    images: mapping or array indexable by a record's ``id`` -> uint8[H, W, 3].
    records: attack records (successful ones are shown first).
    class_names: label names.
    path: where to save (PNG, or PDF by extension); None returns the figure.
  The changed pixels are circled; titles give the true label and its clean
  probability, and the adversarial label with its probability.
  """
  from matplotlib.patches import Circle
  chosen = sorted(records, key=lambda r: (not r["success"], -r["adversarial_prob"]))[:max_examples]
  n = max(1, len(chosen))
  fig, axes = _subplots(2, n, figsize=(1.9 * n, 4.6), squeeze=False)
  for j, r in enumerate(chosen):
    img = np.asarray(images[r["id"]])
    pert = np.asarray(r["perturbation"], np.int32)
    adv = np.asarray(perturb.apply(img, pert))
    top, bottom = axes[0, j], axes[1, j]
    top.imshow(img, interpolation="nearest")
    clean_p = r.get("clean_prob")
    top.set_title(f"true: {_label(class_names, r['label'])}" + (f"\n({clean_p:.0%})" if clean_p is not None else ""),
                  fontsize=8)
    bottom.imshow(adv, interpolation="nearest")
    mark = "" if r["success"] else " (failed)"
    tgt = "" if r["target"] is None else f"\ntarget: {_label(class_names, r['target'])}"
    # Below the adversarial image, so that it never covers the clean one.
    bottom.set_xlabel(f"adv: {_label(class_names, r['predicted'])} ({r['adversarial_prob']:.0%}){mark}{tgt}",
                      fontsize=8, color="crimson" if r["success"] else "gray")
    radius = max(img.shape[:2]) / 16
    for x, y, *_ in pert.tolist():
      bottom.add_patch(Circle((x, y), radius, fill=False, color="yellow", lw=1.5))
    for ax in (top, bottom):
      ax.set_xticks([])
      ax.set_yticks([])
  for j in range(len(chosen), n):
    axes[0, j].axis("off")
    axes[1, j].axis("off")
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  if path is None:
    return fig
  fig.savefig(path, dpi=120)
  return path


def _names(data):
  return data.get("class_names") or [str(i) for i in range(10)]


def _matrix(ax, m, names, title, fmt="{:.2f}", counts=None, cmap="viridis", vmin=None, vmax=None,
            xlabel="target / adversarial class", skip_zero=False):
  """The one C x C heat map (rows: original class, columns: target): each
  finite cell written in (``counts`` below it; zeros left blank if ``skip_zero``)."""
  m = arr(m)
  im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=vmin, vmax=vmax)
  ax.set_xticks(range(len(names)))
  ax.set_xticklabels(names, rotation=90, fontsize=7)
  ax.set_yticks(range(len(names)))
  ax.set_yticklabels(names, fontsize=7)
  ax.set_xlabel(xlabel, fontsize=8)
  ax.set_ylabel("original class", fontsize=8)
  ax.set_title(title, fontsize=9)
  for i in range(m.shape[0]):
    for j in range(m.shape[1]):
      if np.isfinite(m[i, j]) and not (skip_zero and m[i, j] == 0):
        txt = fmt.format(m[i, j]) + (f"\n({counts[i][j]})" if counts is not None else "")
        ax.text(j, i, txt, ha="center", va="center", fontsize=5, color="w")
  ax.figure.colorbar(im, ax=ax, fraction=0.046)


def _note(fig, data):
  if data.get("note"):
    fig.text(0.01, -0.01, data["note"], fontsize=7, color="crimson", va="top")


def _finish(fig, data):
  """The note (if any) under a tightly laid out figure."""
  _note(fig, data)
  fig.tight_layout()
  return fig


# --------------------------------------------------------------------------
# The paper's figures (onepixel_jax.paper.reproduce).
# --------------------------------------------------------------------------


@_drawer("targets_histogram")
def _targets_histogram(data):
  """Fig. 5: share of images reaching 0..9 target classes, one bar group per run.

  ``data``: {"runs": {name: {"counts": [10 ints], "paper_zero": float | None}}}.
  """
  runs = data["runs"]
  fig, ax = _subplots(figsize=(7, 3.4))
  width = 0.8 / max(1, len(runs))
  for j, (name, r) in enumerate(runs.items()):
    counts = np.asarray(r["counts"], float)
    share = counts / max(1.0, counts.sum())
    bars = ax.bar(np.arange(len(counts)) + j * width, share, width, label=name)
    if r.get("paper_zero") is not None:
      ax.plot([j * width], [r["paper_zero"]], marker="_", ms=14, mew=2.5, color=bars[0].get_facecolor(),
              markeredgecolor="black")
  ax.set_xticks(np.arange(10) + 0.4 - width / 2)
  ax.set_xticklabels(range(10))
  ax.set_xlabel("number of target classes reached")
  ax.set_ylabel("share of images")
  ax.set_title("Fig. 5: target classes per image (black marks: paper's share at 0)", fontsize=9)
  ax.legend(fontsize=7)
  return _finish(fig, data)


@_drawer("pair_heatmap")
def _pair_heatmap(data):
  """Figs. 6-7: successful attacks from original class (rows) to target class (columns).

  ``data``: {"title": str, "class_names": [...], "counts": [[C x C ints]]}.
  """
  fig, ax = _subplots(figsize=(5.2, 4.6))
  _matrix(ax, data["counts"], data["class_names"], data["title"], "{:.0f}", xlabel="target class", skip_zero=True)
  return _finish(fig, data)


# --------------------------------------------------------------------------
# Probing.
# --------------------------------------------------------------------------


@_drawer("probe_curves")
def _probe_curves(d):
  ex = d["examples"]
  names = _names(d)
  t = np.asarray(d["t"])
  n = max(1, len(ex))
  cols = min(3, n)
  rows = math.ceil(n / cols)
  fig, axes = _subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
  colours = _cmap("tab10")
  for k, e in enumerate(ex):
    ax = axes[k // cols, k % cols]
    probs = arr(e["probs"])
    for c in range(probs.shape[1]):
      strong = c in (e["label"], e["adv_label"])
      ax.plot(t, probs[:, c], color=colours(c % 10), lw=2 if strong else 0.7, alpha=1 if strong else 0.6,
              label=names[c] if strong else None)
    ax.axvline(1.0, color="k", ls=":", lw=0.8)
    if e.get("flip_t") is not None:
      ax.axvline(e["flip_t"], color="crimson", lw=0.8)
    if e.get("width_lo") is not None and e.get("width_hi") is not None:
      ax.axvspan(e["width_lo"], e["width_hi"], color="crimson", alpha=0.1)
    ax.set_title(e["title"], fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("t (0 clean, 1 adversarial colour)", fontsize=7)
    ax.legend(fontsize=6, loc="center left")
  for k in range(len(ex), rows * cols):
    axes[k // cols, k % cols].axis("off")
  fig.suptitle(d.get("title", "class probabilities along the colour path"), fontsize=9)
  return _finish(fig, d)


@_drawer("probe_pairs")
def _probe_pairs(d):
  names = _names(d)
  fig, axes = _subplots(1, 2, figsize=(10, 4.4))
  _matrix(axes[0], d["flip_distance"], names, "median flip distance (RGB units)", "{:.0f}", d["count"])
  _matrix(axes[1], d["width_distance"], names, "median 10-90% transition width (RGB units)", "{:.0f}", d["count"])
  fig.suptitle(d.get("title", "boundary probing per (original, adversarial) pair; (n) probes"), fontsize=9)
  return _finish(fig, d)


@_drawer("probe_positions")
def _probe_positions(d):
  r = d["radius"]
  fig, axes = _subplots(1, 2, figsize=(7.5, 3.3))
  for ax, key, title in ((axes[0], "adv_prob", "mean P(adversarial class)"),
                         (axes[1], "still_adversarial", "share still adversarial")):
    m = arr(d[key])
    im = ax.imshow(m, vmin=0, vmax=1, cmap="magma", extent=(-r - 0.5, r + 0.5, r + 0.5, -r - 0.5))
    for i in range(m.shape[0]):
      for j in range(m.shape[1]):
        if np.isfinite(m[i, j]):
          ax.text(j - r, i - r, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6, color="c")
    ax.set_xlabel("dx (columns)")
    ax.set_ylabel("dy (rows)")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
  fig.suptitle(d.get("title", "adversarial colour moved to neighbouring positions"), fontsize=9)
  return _finish(fig, d)


# --------------------------------------------------------------------------
# Corner search.
# --------------------------------------------------------------------------


@_drawer("vulnerability_maps")
def _vulnerability_maps(d):
  maps = d["maps"]
  n = len(maps)
  cols = min(n, 6) + 1
  rows = 2 * math.ceil(n / (cols - 1))
  fig, axes = _subplots(rows, cols, figsize=(1.8 * cols, 1.95 * rows), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  pts = d.get("de_points") or []
  for i, m in enumerate(maps):
    r, c = 2 * (i // (cols - 1)), i % (cols - 1)
    if d.get("images"):
      axes[r, c].imshow(np.asarray(d["images"][i], np.uint8), interpolation="nearest")
    axes[r, c].set_title(d["titles"][i], fontsize=6)
    im = axes[r + 1, c].imshow(np.asarray(m), vmin=0, vmax=8, cmap="inferno", interpolation="nearest")
    for k, x, y in pts:
      if k == i:
        for ax in (axes[r, c], axes[r + 1, c]):
          ax.plot(x, y, "c+", ms=7, mew=1.5)
  mean = arr(d["mean_map"])
  ax = axes[1, cols - 1]
  ax.imshow(mean, vmin=0, cmap="viridis", interpolation="nearest")
  ax.set_title("all images: share\nof corners flipping", fontsize=6)
  axes[0, cols - 1].text(0, 0.5, "rows: image, then how many\nof the 8 extreme colours\nflip the label "
                         "(0 black..8)\n+ = DE's successful pixel", fontsize=6, va="center")
  fig.colorbar(im, ax=axes[:, :cols - 1].ravel().tolist(), fraction=0.02)
  fig.suptitle(d.get("title", "vulnerability maps (exhaustive corner search)"), fontsize=9)
  _note(fig, d)
  return fig


@_drawer("verify_maps")
def _verify_maps(d):
  """Per image: its picture (when the data has one) above its per-position verdicts (analysis.verify)."""
  from matplotlib.colors import ListedColormap
  maps, pics = d["maps"], d.get("images") or []
  n = len(maps)
  cols = max(1, min(n, 8))
  per = 2 if pics else 1
  rows = per * math.ceil(n / cols)
  fig, axes = _subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  cmap = ListedColormap(["#9e9e9e", "#2e7d32", "#c62828"])  # unknown, certified robust, vulnerable
  for i, m in enumerate(maps):
    r, c = per * (i // cols), i % cols
    if pics:
      axes[r, c].imshow(np.asarray(pics[i], np.uint8), interpolation="nearest")
    axes[r, c].set_title(d["titles"][i], fontsize=5.5)
    axes[r + per - 1, c].imshow(np.asarray(m), vmin=0, vmax=2, cmap=cmap, interpolation="nearest")
    px = (d.get("pixels") or [None] * n)[i]
    if px:
      for ax in {axes[r, c], axes[r + per - 1, c]}:
        ax.plot(px[0], px[1], "c+", ms=6, mew=1.2)
  fig.suptitle(d.get("title", "one-pixel verdicts per position") + "\ngreen: certified robust, red: vulnerable, "
               "grey: unknown; +: the reported pixel", fontsize=8, y=1.04 if pics else 1.08)
  _note(fig, d)
  return fig


@_drawer("corner_vs_de")
def _corner_vs_de(d):
  fig, ax = _subplots(figsize=(5.2, 3.6))
  b = np.asarray(d["budgets"])
  ax.plot(b, arr(d["corner_random_order"]), label="corner search, random order (expected)")
  ax.plot(b, arr(d["de"]), label=d.get("de_label", "DE (paper settings)"), marker=".", ms=3)
  ax.axhline(d["corner_exhaustive"], color="gray", ls=":", lw=0.8, label="corner search, all 8,192")
  ax.set_xscale("log")
  ax.set_xlabel("queries per image")
  ax.set_ylabel("non-targeted success")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  ax.set_title(d.get("title", "success at equal query budgets"), fontsize=9)
  return _finish(fig, d)


@_drawer("search_curves")
def _search_curves(d):
  fig, ax = _subplots(figsize=(6.0, 4.0))
  b = np.asarray(d["budgets"])
  for name, c in d["curves"].items():
    ax.plot(b, arr(c["success"]), label=f"{name} (n={c['n']})")
  if d.get("ceiling"):
    ax.axhline(d["ceiling"]["rate"], color="black", ls="--", lw=0.8, label=d["ceiling"].get("label", "grid reference"))
  ax.set_xscale("log")
  ax.set_xlim(1, d["max_queries"])
  ax.set_xlabel("queries per image")
  ax.set_ylabel("images fooled so far")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  ax.set_title(d.get("title", f"one-pixel success against queries ({d.get('model', '')})"), fontsize=9)
  return _finish(fig, d)


@_drawer("pair_matrix")
def _pair_matrix(d):
  fig, ax = _subplots(figsize=(5.2, 4.6))
  _matrix(ax, d["matrix"], _names(d), d.get("title", ""), counts=d.get("counts"), vmin=0, vmax=1)
  return _finish(fig, d)


# --------------------------------------------------------------------------
# Open questions.
# --------------------------------------------------------------------------


@_drawer("population_sweep")
def _population_sweep(d):
  fig, axes = _subplots(1, 2, figsize=(10, 3.8))
  rows = d["rows"]
  sizes = [r["popsize"] for r in rows]
  s = arr([r["success"] for r in rows])
  lo = arr([r["ci95"][0] for r in rows])
  hi = arr([r["ci95"][1] for r in rows])
  ax = axes[0]
  ax.errorbar(sizes, s, yerr=[s - lo, hi - s], marker="o", capsize=3, label="misclassified")
  ax.plot(sizes, arr([r["deep_success"] for r in rows]), marker="s", label="true class < 5% (paper's stop)")
  ax.set_xscale("log")
  ax.minorticks_off()
  ax.set_xticks(sizes)
  ax.set_xticklabels([f"{p}\n({r['generations']} gen)" for p, r in zip(sizes, rows)], fontsize=7)
  ax.set_xlabel(f"initial population (budget {d['budget']} queries per attack)")
  ax.set_ylabel("non-targeted success")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  ax.set_title("success at a fixed query budget (95% Wilson CI)", fontsize=9)
  ax = axes[1]
  b = np.asarray(d["budgets"])
  for r in rows:
    ax.plot(b, arr(r["success_by_queries"]), label=f"P={r['popsize']}")
  ax.set_xscale("log")
  ax.set_xlabel("queries spent")
  ax.set_ylabel("success so far")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  ax.set_title("success against queries, per population", fontsize=9)
  fig.suptitle(d.get("title", "open question 1: initial population size"), fontsize=9)
  return _finish(fig, d)


@_drawer("generation_curves")
def _generation_curves(d):
  fig, axes = _subplots(1, 2, figsize=(10, 3.6))
  for k, cur in enumerate(d["curves"]):
    g = np.asarray(cur["generation"])
    col = _cmap("tab10")(k % 10)
    axes[0].plot(g, arr(cur["success"]), color=col, label=f"{cur['name']}: misclassified")
    axes[0].plot(g, arr(cur["deep"]), color=col, ls="--", label=f"{cur['name']}: past the paper's stop")
    axes[1].plot(g, arr(cur["median_objective"]), color=col, label=cur["name"])
  axes[0].set_xlabel("generation")
  axes[0].set_ylabel("share of attacks")
  axes[0].set_ylim(-0.02, 1.02)
  axes[0].legend(fontsize=6)
  axes[0].set_title("success by generation", fontsize=9)
  axes[1].set_xlabel("generation")
  axes[1].set_ylabel("median attacked probability\n(true class; target if targeted)")
  axes[1].set_ylim(bottom=0)
  axes[1].legend(fontsize=6)
  axes[1].set_title("how good the best candidate is, by generation", fontsize=9)
  fig.suptitle(d.get("title", "open question 2: do more generations help?"), fontsize=9)
  return _finish(fig, d)


@_drawer("imbalance")
def _imbalance(d):
  names = _names(d)
  graded = d.get("best") is not None
  fig, axes = _subplots(1, 4 if graded else 3, figsize=(20 if graded else 15, 4.5))
  _matrix(axes[0], d["success"], names, d.get("success_title", "pair success"), vmin=0, vmax=1)
  k = 1
  if graded:
    _matrix(axes[1], d["best"], names, "mean highest p(target) reached", "{:.2f}", cmap="magma")
    k = 2
  _matrix(axes[k], d["confusion"], names, "clean soft confusion: mean p(target)", "{:.2f}", cmap="magma")
  ax = axes[k + 1]
  if graded:
    ax.scatter(arr(d["attack_margin"]), arr(d["attack_best"]), s=6, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("clean margin log p(true) - log p(target), per (image, target)")
    ax.set_ylabel("highest p(target) reached")
    r = d["attack_best_vs_margin"]
  else:
    ax.scatter(arr(d["margin"]).ravel(), arr(d["success"]).ravel(), s=12)
    ax.set_xlabel("mean clean margin log p(true) - log p(target)")
    ax.set_ylabel("pair success")
    r = d["pair_vs_margin"]
  ax.set_title(f"Spearman rho = {r['rho'] if r['rho'] is None else round(r['rho'], 2)} (n = {r['n']})", fontsize=9)
  fig.suptitle(d.get("title", "open question 3: class-pair imbalance"), fontsize=9)
  return _finish(fig, d)


@_drawer("geometry")
def _geometry(d):
  names = _names(d)
  fig, axes = _subplots(1, 2, figsize=(10, 3.8))
  ax = axes[0]
  ax.scatter(arr(d["pair_flip"]), arr(d["pair_success"]), s=14)
  for x, y, lab in zip(arr(d["pair_flip"]), arr(d["pair_success"]), d["pair_names"]):
    if np.isfinite(x) and np.isfinite(y):
      ax.annotate(lab, (x, y), fontsize=5)
  r = d["pair_success_vs_flip"]
  ax.set_xlabel("median flip distance along the colour path (RGB units)")
  ax.set_ylabel("pair success")
  ax.set_title(f"rho = {r['rho'] if r['rho'] is None else round(r['rho'], 2)} (n = {r['n']} pairs)", fontsize=9)
  ax = axes[1]
  fl, asym = arr(d["class_flip_distance"]), arr(d["asymmetry"])
  ax.scatter(fl, asym, s=14)
  for x, y, lab in zip(fl, asym, names):
    if np.isfinite(x) and np.isfinite(y):
      ax.annotate(lab, (x, y), fontsize=6)
  ax.axhline(0, color="gray", lw=0.5)
  r = d["asymmetry_vs_flip"]
  ax.set_xlabel("class's median flip distance (probes from it)")
  ax.set_ylabel("success from class - success to class")
  ax.set_title(f"rho = {r['rho'] if r['rho'] is None else round(r['rho'], 2)} (n = {r['n']} classes)", fontsize=9)
  fig.suptitle(d.get("title", "the 'long, thin boundary' note, tested with probing"), fontsize=9)
  return _finish(fig, d)


@_drawer("pixel_subsets")
def _pixel_subsets(d):
  """How many of a k-pixel success's pixels it needs (``analysis.pixel_subsets``).

  ``d``: {"title", "pixels": k, "minimal_size_counts": {size: records},
  "subset_success_share_by_size": {size: share}}.
  """
  k = int(d["pixels"])
  sizes = np.arange(1, k + 1)
  counts = np.asarray([d["minimal_size_counts"].get(str(s), 0) for s in sizes], float)
  share = np.asarray([np.nan if d["subset_success_share_by_size"].get(str(s)) is None
                      else d["subset_success_share_by_size"][str(s)] for s in sizes], float)
  fig, axes = _subplots(1, 2, figsize=(9, 3.4))
  axes[0].bar(sizes, counts)
  axes[0].set_xlabel("fewest of its pixels that still succeed")
  axes[0].set_ylabel("successful attacks")
  axes[0].set_xticks(sizes)
  axes[1].plot(sizes, share, marker="o")
  axes[1].set_ylim(0, 1.05)
  axes[1].set_xlabel("pixels kept (every subset of that size)")
  axes[1].set_ylabel("share of subsets that succeed")
  axes[1].set_xticks(sizes)
  fig.suptitle(d.get("title", "pixels a success needs"), fontsize=9)
  return _finish(fig, d)
