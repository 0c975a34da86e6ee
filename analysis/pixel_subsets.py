r"""How many of a k-pixel attack's pixels does its success need?

    python -m analysis.pixel_subsets                                  # 20 images, 3-pixel DE attacks first
    python -m analysis.pixel_subsets --model=nin --data=$ONEPIXEL_CIFAR10 \
        --results=docs/paper_cpu/v_nin_5px/results.jsonl --out=runs/analysis/subsets_nin_5px

For every successful attack with 2 or more pixels, evaluates every non-empty
subset of its pixels on the clean image (31 queries for 5 pixels) and
reports the fewest pixels that still succeed by the attack's own criterion
(targeted: the target wins; non-targeted: the true class loses). Without
``--results`` it first runs non-targeted DE attacks with ``--pixels`` pixels
on the drawn images (the paper's population and early stop, at most
``--generations`` generations).

Writes ``OUT/attacks.jsonl`` (if it attacked), ``pixel_subsets_summary.json`` (a row
per successful attack and the summary) and ``pixel_subsets`` (.png, .pdf,
.json).
"""

import sys

import jax
import numpy as np
from absl import app, flags

from analysis import common
from onepixel_jax.analysis import pixel_subsets
from onepixel_jax.attack import AttackConfig

FLAGS = flags.FLAGS
common.define_io(20, "runs/analysis/pixel_subsets")
flags.DEFINE_integer("pixels", 3, "Pixels per attack when attacking (the paper's Table V: 3 and 5).")
flags.DEFINE_integer("popsize", common.PAPER.popsize, f"DE population when attacking (paper: {common.PAPER.popsize}).")
flags.DEFINE_integer("generations", 10, f"Maximum DE generations when attacking (paper: {common.PAPER.generations}; "
                     "10 keeps the default run to a few minutes on 2 CPU cores).")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"analysis.pixel_subsets: error: unexpected arguments {argv[1:]}")

  def body():
    if FLAGS.pixels < 2:
      raise ValueError(f"--pixels must be at least 2 (a 1-pixel success has no smaller subset), got {FLAGS.pixels}")
    inp = common.load_inputs()
    recs, source, written = common.records_or_attack(
        inp, AttackConfig(pixels=FLAGS.pixels, popsize=FLAGS.popsize, generations=FLAGS.generations))
    images_meta = common.describe(inp, recs)
    recs = pixel_subsets.successful_records(recs)
    k = {len(r["perturbation"]) for r in recs}
    if len(k) > 1:
      raise ValueError(f"the successful attacks have different numbers of pixels ({sorted(k)}); give one run's records")
    pixels = k.pop() if k else FLAGS.pixels
    ids = np.array([r["id"] for r in recs], int)
    res = pixel_subsets.evaluate(inp.model, inp.all_images[ids],
                                 np.reshape([r["perturbation"] for r in recs], (len(recs), pixels, 5)),
                                 [r["label"] for r in recs], [r["target"] for r in recs], FLAGS.batch_size)
    meta = {**images_meta, "source": source}
    out = pixel_subsets.outputs(res, ids, inp.class_names, meta, common.weights_note(inp))
    written += common.write_outputs(out)
    s = out.json["pixel_subsets_summary.json"]["summary"]
    counts = ", ".join(f"{n} need {size}" for size, n in s["minimal_size_counts"].items())
    print(f"{s['records']} successful {s['pixels']}-pixel attacks, {s['reproduced']} reproduced: {counts}"
          + ("" if recs else f" (no successful attack with 2 or more pixels in {source})"))
    return written

  common.run("pixel_subsets", body)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
