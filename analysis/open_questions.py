r"""The paper's open questions: initial population, generations, class-pair imbalance.

    python -m analysis.open_questions                  # 6 images, ~4 min on 2 CPU cores (AllConv)
    python -m analysis.open_questions --results=runs/demo/results.jsonl --clean_data=$ONEPIXEL_CIFAR10

1. Population: non-targeted DE on every drawn, correctly classified image with
   each population in ``--sizes`` at a *fixed query budget* (``--budget``
   queries per attack, so generations = budget / population - 1; population
   = budget is random search). Paper's early stop (true class < 5%).
2. Generations: success and the best candidate's true-class probability by
   generation, from the sweep's per-generation histories (and ``--results``'s).
3. Imbalance: per (original, target) pair success, from targeted ``--results``
   if given, else from which classes one extreme pixel reaches (``--corners``:
   an analysis.vulnerability output), else from which classes
   ``--reach_candidates`` random single pixels (the paper's initial
   distribution) reach; with the highest target probability reached; related to the clean soft
   confusion (on ``--clean_data``) and the images' clean margins. The
   "long, thin boundary" note is tested with boundary probes of the sweep's
   successful perturbations (or ``--probes``: an analysis.probe output folder).

Writes ``OUT/attacks.jsonl``, ``openq_summary.json`` and ``population_sweep``,
``generation_curves``, ``imbalance``, ``geometry`` (.png, .pdf, .json).
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

from analysis import common
from onepixel_jax import data
from onepixel_jax.analysis import open_questions as openq
from onepixel_jax.analysis import probe

FLAGS = flags.FLAGS
common.define_io(6, "runs/analysis/open_questions")
flags.DEFINE_list("sizes", [str(s) for s in openq.SIZES], "Initial population sizes (paper: 400).")
flags.DEFINE_integer("budget", 1600, "Queries per attack for every population size.")
flags.DEFINE_integer("reach_candidates", 1000, "Random single-pixel changes per image for pair reachability "
                     "(used without targeted --results).")
flags.DEFINE_string("clean_data", None, "Data for the clean soft-confusion matrix (default: --data).")
flags.DEFINE_integer("clean_images", 2000, "At most this many --clean_data images (seeded draw).")
flags.DEFINE_string("probes", None, "An analysis.probe output folder to use instead of probing the sweep.")
flags.DEFINE_string("corners", None, "An analysis.vulnerability output folder: pair success = which classes "
                    "one extreme pixel reaches (used without targeted --results).")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"analysis.open_questions: error: unexpected arguments {argv[1:]}")

  def body():
    inp = common.load_inputs()
    sizes = [int(s) for s in FLAGS.sizes]
    openq.sweep_configs(sizes, FLAGS.budget)  # bad sizes fail before anything runs
    extra = common.read_records(FLAGS.results, inp) if FLAGS.results else []  # as do bad --results
    by_size = openq.population_sweep(inp.model, inp.images, inp.labels, inp.ids, sizes, FLAGS.budget,
                                     seed=FLAGS.seed, progress=True)
    sweep_records = [{**r, "budget": FLAGS.budget} for p in sorted(by_size) for r in by_size[p].records()]
    path = common.write_records("attacks.jsonl", sweep_records)
    c = len(inp.class_names)

    targeted = [r for r in extra if r["target"] is not None]
    best = None
    if targeted:
      ids = np.array(sorted({r["id"] for r in targeted}))
      success = openq.targeted_success(targeted, ids, c)
      labels = inp.all_labels[ids]
      clean = data.classify(inp.model, inp.all_images[ids])
      source = f"targeted DE, {FLAGS.results}"
    elif FLAGS.corners:
      success, best, ids = openq.corner_success(os.path.join(FLAGS.corners, "corners.npz"), c)
      labels = inp.all_labels[ids]
      clean = data.classify(inp.model, inp.all_images[ids])
      source = f"reached by one extreme pixel (corner search, {len(ids)} images)"
    else:
      reach, best = openq.random_reach(inp.model, inp.images, inp.labels, FLAGS.reach_candidates, FLAGS.seed)
      success, labels, clean = reach.astype(float), inp.labels, inp.clean
      source = f"reached by {FLAGS.reach_candidates} random pixels"
    if FLAGS.clean_data:
      images, all_labels = data.load(FLAGS.clean_data, "test", inp.model)
      pick = data.draw(len(images), min(FLAGS.clean_images, len(images)), FLAGS.seed)
      cp, cl = data.classify(inp.model, images[pick]), all_labels[pick]
    else:
      cp, cl = data.classify(inp.model, inp.all_images), inp.all_labels
    imb = openq.imbalance(success, labels, clean, cp, cl, best)

    if FLAGS.probes:
      with open(os.path.join(FLAGS.probes, "probe_summary.json")) as f:
        pairs = json.load(f)["pairs"]
    else:
      recs = probe.select(sweep_records + extra, best_candidates=False)
      pairs = []
      if recs:
        ids = np.array([r["id"] for r in recs])
        pr = probe.probe(inp.model, inp.all_images[ids], [r["label"] for r in recs],
                         [r["perturbation"] for r in recs], batch_size=FLAGS.batch_size)
        pairs = probe.by_pair(pr)
    geo = openq.geometry(pairs, imb["success"], imb["from_rate"], imb["to_rate"]) if pairs else None
    meta = {**inp.describe(), "sizes": sizes, "results": FLAGS.results, "clean_data": FLAGS.clean_data or FLAGS.data,
            "clean_images": int(len(cl)), "class_names": inp.class_names}
    out = openq.outputs(by_size, FLAGS.budget, inp.class_names, imb, source, geo, pairs,
                        {"--results": extra} if extra else None, meta, common.weights_note(inp))
    written = [path] + common.write_outputs(out)
    for p, res in sorted(by_size.items()):
      print(f"population {p:5d}: {res.success_rate:.0%} of {len(res)} images fooled within {FLAGS.budget} queries")
    return written

  common.run("open_questions", body)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
