r"""How vulnerable is each image, really? One-pixel verdicts per image and position.

    python -m analysis.verify --model=convsmall --data=$ONEPIXEL_CIFAR10 --num_images=100 --out=runs/verify/convsmall
    python -m analysis.verify --model=convsmall --targets --num_images=5     # each image against each other class
    python -m analysis.verify --model=allconv --num_images=2                 # grid reference only (see below)

The images are the first ``--num_images`` correctly classified test images of
the seeded random order (``data.draw_correct``, as the paper presets draw
them: with ``--seed=0`` and the CIFAR-10 tarball, ``--num_images=100`` on
AllConv are the images of docs/paper_cpu/viii_allconv). For each image (and
with ``--targets`` each other class) the exhaustive grid reference runs first
(``--levels`` values per channel), then the certifier decides every position
by branch and bound over colour boxes (``onepixel_jax.analysis.certify``):
certified robust, vulnerable (a colour confirmed by the model) or unknown
(``--budget`` seconds / ``--max_boxes`` boxes per image). A network whose cone
costs more than ``verify.MAX_BOX_MACS`` per box (AllConv), or that has max
pooling, which the certifier cannot relax (NiN, VGG16), gets the grid
reference only: its grid-vulnerable positions, every other one unknown.

Writes ``OUT/verify.jsonl`` (a record per image as it finishes; rerunning
skips the finished ones and refuses other settings or weights),
``verify_config.json``, ``verify_summary.json`` (with ``--results``: DE's
recall against the grid reference and the verdicts) and ``verify_maps``
(.png, .pdf, .json).
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

from analysis import common
from onepixel_jax import data, figures, job, models, results
from onepixel_jax.analysis import certify, verify

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 2, "Correctly classified test images, the first of the seeded random order "
                     "(data.draw_correct).")
flags.DEFINE_string("out", "runs/analysis/verify", "Output directory.")
flags.DEFINE_bool("targets", False, "Targeted: certify each image against each other class (a record per target).")
flags.DEFINE_float("budget", 120.0, "The certifier's wall seconds per image (and target); positions still open "
                   "then are unknown.")
flags.DEFINE_integer("max_boxes", 1_000_000, "The certifier's colour boxes per image (and target).")
flags.DEFINE_integer("levels", 3, "Grid reference: values per channel (3: 27 colours, 5: 125).")
flags.DEFINE_integer("boxes_per_call", 512, "Colour boxes bounded per compiled call (speed only).")
flags.DEFINE_bool("pictures", True, "Draw each image above its map in verify_maps (--nopictures: maps only, "
                  "for figures that may be published when the images may not). Rerunning a finished run with "
                  "--nopictures only redraws.")
flags.DEFINE_integer("report_positions", 0, "Instead of verdicts: a bound report (how loose the bounds are) at this "
                     "many seeded random positions per image, for boxes of radius 0, 2, 16 and 255 around the clean "
                     "colour; writes OUT/bound_report.jsonl.")
flags.DEFINE_float("backsub_limit", 3e9, "Bound report: hidden layers whose back-substitution costs more "
                   "multiply-adds than this get interval bounds (the margins are always back-substituted).")

_SETTINGS = ("model", "checkpoint", "data", "seed", "targets", "budget", "max_boxes", "levels")


def _bound_report(model, net, images, labels, ids) -> list[str]:
  rng = np.random.default_rng(FLAGS.seed)
  layers = verify.backsub_layers(net, FLAGS.backsub_limit)
  print(f"analysis.verify: bound report on {model.name}, cone {certify.cone_sizes(net)}; hidden layers "
        f"back-substituted: {layers}", flush=True)
  recs = []
  for i in ids:
    pos = rng.integers(0, images.shape[1], (FLAGS.report_positions, 2))
    for row in verify.bound_report(net, images[i], int(labels[i]), pos, backsub_limit=FLAGS.backsub_limit):
      recs.append({"index": int(i), "label": int(labels[i]), "backsub_layers": layers, **row})
      print(json.dumps({k: recs[-1][k] for k in ("index", "position", "radius", "margin_lower_backsub",
                                                 "margin_lower_ibp", "margin_at_centre", "seconds")}), flush=True)
  return [common.write_records("bound_report.jsonl", recs)]


def main(argv):
  if len(argv) > 1:
    sys.exit(f"analysis.verify: error: unexpected arguments {argv[1:]}")

  def body():
    model = models.load(FLAGS.model, FLAGS.checkpoint)
    no_relaxation = certify.certifiable(model)  # NiN, VGG16: the grid reference alone
    net = None if no_relaxation else certify.from_model(model)
    images, labels = data.load(FLAGS.data, "test", model)
    ids, probs = data.draw_correct(model, images, labels, FLAGS.num_images, FLAGS.seed)
    ids = ids[probs.argmax(1) == labels[ids]]
    attacks = results.read(FLAGS.results) if FLAGS.results else []
    bad = [a["id"] for a in attacks if not 0 <= a["id"] < len(images)]
    if bad:
      raise ValueError(f"{FLAGS.results}: record id {bad[0]} is outside --data={FLAGS.data} ({len(images)} images)")
    if FLAGS.report_positions > 0:
      if net is None:
        raise ValueError(f"--report_positions needs the certifier's bounds: {no_relaxation}")
      return _bound_report(model, net, images, labels, ids)
    settings = {k: getattr(FLAGS, k) for k in _SETTINGS}
    settings.update(eps_rel=certify.EPS_REL, weights_sha256=job.weights_sha256(model))
    os.makedirs(FLAGS.out, exist_ok=True)
    config = os.path.join(FLAGS.out, "verify_config.json")
    results.check_resumable(config, settings)
    figures.write_json(config, settings)
    path = os.path.join(FLAGS.out, "verify.jsonl")
    done = {(r["index"], r["target"]) for r in results.read(path)}
    tasks = [(int(i), t) for i in ids for t in
             ([c for c in range(model.num_classes) if c != labels[i]] if FLAGS.targets else [None])]
    cost = (f"grid reference only ({no_relaxation})" if net is None else
            f"cone {certify.cone_sizes(net)}, {certify.box_macs(net):.1e} multiply-adds per box")
    print(f"analysis.verify: {len(tasks)} records ({len(done & set(tasks))} done before); {model.name}: {cost}",
          flush=True)
    for i, t in tasks:
      if (i, t) in done:
        continue
      rec = verify.record(model, net, images[i], int(labels[i]), i, -1 if t is None else t, FLAGS.levels,
                          FLAGS.budget, FLAGS.max_boxes, FLAGS.boxes_per_call)
      results.append(path, [rec])
      print(f"#{i} label {rec['label']}" + ("" if t is None else f" target {t}") + f": {rec['verdict']} "
            f"(certified {rec['certified']}, vulnerable {rec['vulnerable']}, unknown {rec['unknown']}; "
            f"grid {'vulnerable' if rec['grid_vulnerable'] else 'robust'}) in {rec['seconds']:.1f} s", flush=True)
    order = {k: n for n, k in enumerate(tasks)}
    recs = sorted((r for r in results.read(path) if (r["index"], r["target"]) in order),
                  key=lambda r: order[(r["index"], r["target"])])
    summ = {**settings, "num_images": int(len(ids)), "results": FLAGS.results,
            "summary": verify.summary(recs, attacks)}
    figures.write_json(os.path.join(FLAGS.out, "verify_summary.json"), summ)
    shown = sorted(recs, key=lambda r: r["verdict"] == "robust")[:24]  # the vulnerable and unknown ones first
    pictures = images[[r["index"] for r in shown]] if FLAGS.pictures else None
    fig = verify.figure_data(shown, pictures, model.class_names, total=len(recs))
    if not FLAGS.pictures:
      fig["title"] += ", pictures left out"
    written = [path, config, os.path.join(FLAGS.out, "verify_summary.json")]
    written += figures.save(FLAGS.out, "verify_maps", "verify_maps", fig)
    s = summ["summary"]
    print(f"{s['images']} records: {s['robust']} robust, {s['vulnerable']} vulnerable, {s['unknown']} unknown "
          f"({s['definite_share']:.0%} definite); median {s['seconds_median']:.1f} s per record")
    return written

  common.run("verify", body)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
