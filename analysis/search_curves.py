r"""Success against queries for every one-pixel search method, on the same images.

    python -m analysis.search_curves --num_images=2 --max_queries=800     # ~1-2 min on 2 CPU cores
    python -m analysis.search_curves --data=$ONEPIXEL_CIFAR10 --num_images=100 \
        --methods=de,random,corner,sparse_rs,prioritized_corners,guided_corners,learned_corners \
        --out=docs/search_curves/allconv

``--num_images`` correctly classified test images (the first ones of the
seeded order, ``data.draw_correct``: with the same seed the images of the
``cpu-paper`` preset's Table VIII). Every method runs non-targeted in the
attack engine with at most ``--max_queries`` queries per image (default the
paper's 40,400), DE with the paper's population ``--popsize``, the others
with ``--step`` proposals per step, and stops at its first success. Each method's records go to ``OUT/<method>.jsonl`` as
attacks finish, without their per-step histories: rerun the same command to
resume after a kill (``OUT/config.json`` records the settings and the
weights' sha256; other settings or weights are refused with one line).
``--results``: DE's records from another run on the same images and budget
(e.g. ``docs/paper_cpu/viii_allconv/results.jsonl``) stand in for running
``de``. ``--reference``: an ``analysis.verify`` output (``verify.jsonl``,
with ``grid_vulnerable`` per image) draws the grid reference's rate as a ceiling
and tables each method's recall against it (``search_curves.recall_table``).

Writes ``OUT/<method>.jsonl``, ``search_table.json``, ``search_table.md``
and ``search_curves`` (.png, .pdf, .json).
"""

import json
import math
import os
import sys

import jax
import numpy as np
from absl import app, flags

from analysis import common
from onepixel_jax import job, methods, results
from onepixel_jax.analysis import inputs as inputs_lib
from onepixel_jax.analysis import search_curves
from onepixel_jax.attack import AttackConfig, attack_iter

FLAGS = flags.FLAGS
common.define_io(2, "runs/analysis/search_curves")
flags.DEFINE_list("methods", list(methods.METHODS), f"Search methods, of {', '.join(methods.METHODS)}.")
flags.DEFINE_integer("max_queries", common.PAPER.max_queries, "Queries per image for every method (paper's DE: "
                     f"{common.PAPER.popsize} x {common.PAPER.generations + 1} = {common.PAPER.max_queries:,}).")
flags.DEFINE_integer("popsize", common.PAPER.popsize, f"DE's population (paper: {common.PAPER.popsize}).")
flags.DEFINE_integer("step", 16, "The other methods' proposals per step: an adaptive method (sparse_rs with "
                     "k > 1, guided_corners) sees the outcome of every step before its next.")
flags.DEFINE_enum("split", "test", ["test", "val", "train"], "Dataset split: choose a method's settings on "
                  "'val' (the training split's 5,000 held-out validation images), report on 'test'.")
flags.DEFINE_string("corner_prior", None, "learned_corners' prior (experiments.fit_corner_prior's JSON; "
                    "default: the bundled AllConv prior).")
flags.DEFINE_string("reference", None, "An analysis.verify verify.jsonl of the same images: the grid "
                    "reference's vulnerability rate is drawn as the ceiling.")


# Not written to OUT/<method>.jsonl: the curves need only each record's first_success_query, and the
# per-step histories grow with the budget (2,526 steps of 16 at 40,400 queries: ~45 KB a record).
_NOT_KEPT = ("index", "fitness_history", "predicted_history")


def _config(method: str) -> AttackConfig:
  q = FLAGS.popsize if method == "de" else FLAGS.step
  steps = math.ceil(FLAGS.max_queries / q)
  return AttackConfig(method=method, popsize=q, generations=steps - 1, query_budget=FLAGS.max_queries,
                      early_stop="misclassify",
                      corner_prior=FLAGS.corner_prior if method == "learned_corners" else None)


def _check_settings(settings: dict):
  path = os.path.join(FLAGS.out, "config.json")
  results.check_resumable(path, settings, ignore=("methods",),  # each method has its own records file
                          added=("weights_sha256",))  # folders written before the weights were recorded
  os.makedirs(FLAGS.out, exist_ok=True)
  with open(path, "w") as f:
    json.dump(settings, f, indent=1)


def _grid_vulnerable(ids) -> dict[int, bool] | None:
  """``{image id: grid_vulnerable}`` of ``--reference``'s non-targeted records of these images."""
  if not FLAGS.reference:
    return None
  recs = {r["index"]: r for r in results.read(FLAGS.reference) if r.get("target", -1) in (-1, None)}
  have = {i: bool(recs[i]["grid_vulnerable"]) for i in ids.tolist()
          if i in recs and recs[i].get("grid_vulnerable") is not None}
  if not have:
    raise ValueError(f"{FLAGS.reference} holds no grid_vulnerable verdict for these images")
  return have


def main(argv):
  if len(argv) > 1:
    sys.exit(f"analysis.search_curves: error: unexpected arguments {argv[1:]}")

  def body():
    names = list(dict.fromkeys(FLAGS.methods))
    for m in names:
      if m not in methods.METHODS:
        raise ValueError(f"--methods: unknown method {m!r}; expected some of {', '.join(methods.METHODS)}")
    configs = {m: _config(m) for m in names}  # bad budgets fail before anything runs
    inp = inputs_lib.load_inputs(FLAGS.model, FLAGS.checkpoint, FLAGS.data, None, FLAGS.seed, split=FLAGS.split,
                                 num_correct=FLAGS.num_images)
    images, labels, ids = inp.images, inp.labels, inp.ids
    per_method = {}
    if FLAGS.results and "de" in names:
      de = [r for r in common.read_records(FLAGS.results, inp) if r["target"] is None]
      by_id = {r["id"]: r for r in de}
      missing = [i for i in ids.tolist() if i not in by_id]
      if missing:
        print(f"--results lacks {len(missing)} of the {len(ids)} images (first id {missing[0]}); "
              f"comparing on the {len(ids) - len(missing)} it has")
      per_method["de"] = [by_id[i] for i in ids.tolist() if i in by_id]
    _check_settings({"model": FLAGS.model, "checkpoint": FLAGS.checkpoint, "data": FLAGS.data,
                     "split": FLAGS.split, "seed": FLAGS.seed,
                     "num_images": FLAGS.num_images, "max_queries": FLAGS.max_queries, "popsize": FLAGS.popsize,
                     "step": FLAGS.step, "corner_prior": FLAGS.corner_prior, "methods": names,
                     "weights_sha256": job.weights_sha256(inp.model)})  # never mix two networks' records
    written = []
    for m in names:
      if m in per_method:
        continue
      path = os.path.join(FLAGS.out, f"{m}.jsonl")
      results.repair(path)
      done = {r["id"] for r in results.read(path)}
      todo = np.array([k for k, i in enumerate(ids.tolist()) if i not in done], int)
      print(f"{m}: {len(done & set(ids.tolist()))} of {len(ids)} images already in {path}, {len(todo)} to run")
      if len(todo):
        for rec in attack_iter(inp.model, images[todo], labels[todo], None, configs[m], FLAGS.seed,
                               FLAGS.batch_size, ids=ids[todo], progress=True):
          for key in _NOT_KEPT:
            rec.pop(key, None)
          results.append(path, [rec])
      keep = set(ids.tolist())
      per_method[m] = [r for r in results.read(path) if r["id"] in keep]
      written.append(path)
    per_method = {m: per_method[m] for m in names}
    meta = {**inp.describe(), "popsize": FLAGS.popsize, "step": FLAGS.step, "note": common.weights_note(inp),
            "title": f"one-pixel success against queries, {inp.model.name}, {len(ids)} images, non-targeted"}
    out = search_curves.outputs(per_method, FLAGS.max_queries, meta, _grid_vulnerable(ids))
    written += common.write_outputs(out)
    table = out.json["search_table.json"]
    text = search_curves.format_table(table["table"])
    if table["recall"]:
      text += (f"\n\nRecall against the grid reference ({table['ceiling']['vulnerable']} of "
               f"{table['ceiling']['n']} images grid-vulnerable):\n\n" + search_curves.format_table(table["recall"], recall=True))
    path = os.path.join(FLAGS.out, "search_table.md")
    with open(path, "w") as f:
      f.write(text + "\n")
    written.append(path)
    print(text)
    return written

  common.run("search_curves", body)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
