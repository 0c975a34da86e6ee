r"""Boundary probing: why is one pixel enough?

    python -m analysis.probe                                   # 10 images, 100 s on 2 CPU cores (AllConv)
    python -m analysis.probe --results=runs/demo/results.jsonl  # probe a main-job run's successes

For every successful perturbation, steps the changed pixel's colour from its
original to its adversarial value and on (``--beyond``), and moves the
adversarial colour to the neighbouring positions (``--radius``), logging every
class probability at every step in one batched evaluation; estimates where
the label flips and how wide the transition is, per (original, adversarial)
pair. An image that no attack fooled is probed towards its best candidate
(how far from the boundary DE stopped); the output says which each probe is.
Without ``--results`` it first runs non-targeted DE attacks on the drawn
images (paper settings: population 400, early stop when the true class falls
below 5%, but at most ``--generations`` generations).

Writes ``OUT/attacks.jsonl`` (if it attacked), ``probes.npz``,
``probe_summary.json`` and ``probe_curves``, ``probe_pairs``,
``probe_positions`` (.png, .pdf, .json).
"""

import sys

import jax
import numpy as np
from absl import app, flags

from analysis import common
from onepixel_jax.analysis import probe
from onepixel_jax.attack import AttackConfig

FLAGS = flags.FLAGS
common.define_io(10, "runs/analysis/probe")
flags.DEFINE_integer("popsize", common.PAPER.popsize, f"DE population when attacking (paper: {common.PAPER.popsize}).")
flags.DEFINE_integer("generations", 10, f"Maximum DE generations when attacking (paper: {common.PAPER.generations}; "
                     "10 keeps the default run under 2 min on 2 CPU cores: <= 4,400 queries per image).")
flags.DEFINE_integer("steps", 20, "Colour steps from the original (t=0) to the adversarial colour (t=1).")
flags.DEFINE_float("beyond", 0.5, "Continue the colour path to t = 1 + beyond (clipped to [0, 255]).")
flags.DEFINE_integer("radius", 2, "Move the adversarial colour to every position within this many pixels.")
flags.DEFINE_integer("examples", 6, "Probes drawn in probe_curves.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"analysis.probe: error: unexpected arguments {argv[1:]}")

  def body():
    inp = common.load_inputs()
    recs, source, written = common.records_or_attack(
        inp, AttackConfig(popsize=FLAGS.popsize, generations=FLAGS.generations))
    images_meta = common.describe(inp, recs)
    recs = probe.select(recs)  # successes, and the best candidate of each image no attack fooled
    if not recs:
      raise ValueError("nothing to probe: none of the drawn images is classified correctly (draw more with "
                       "--num_images)" if not FLAGS.results else f"no attack records in {FLAGS.results}")
    ids = np.array([r["id"] for r in recs])
    p = probe.probe(inp.model, inp.all_images[ids], [r["label"] for r in recs],
                    [r["perturbation"] for r in recs], FLAGS.steps, FLAGS.beyond, FLAGS.radius, FLAGS.batch_size)
    meta = {**images_meta, "source": source, "steps": FLAGS.steps, "beyond": FLAGS.beyond,
            "radius": FLAGS.radius, "class_names": inp.class_names}
    out = probe.outputs(p, ids, inp.class_names, FLAGS.examples, meta, common.weights_note(inp))
    written += common.write_outputs(out)
    s = out.json["probe_summary.json"]["summary"]
    print(f"probed {s['successful']} successful perturbations and {s['best_candidates']} best candidates of "
          f"images no attack fooled")
    if s["successful"]:
      print(f"successes: median flip at t={s['median_flip_t']} ({s['median_flip_distance']} RGB units), median "
            f"10-90% width {s['median_width_distance']} RGB units, {s['mean_neighbour_share']} of neighbours "
            f"still adversarial")
    if s["best_candidates"]:
      print(f"best candidates: the true class still leads by a median {s['best_candidate_median_margin']:.3f} at "
            f"t=1; {s['best_candidate_flips_beyond']:.0%} of them flip further along the colour path")
    return written

  common.run("probe", body)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
