r"""The main job: one-pixel attacks on a trained network.

    python -m experiments.attack --model=allconv --data=samples --out=runs/demo

Defaults are the paper's (Su, Vargas, Sakurai 2019, Sec. IV): 1 pixel,
population 400, up to 100 generations, F = 0.5, targeted attacks towards each
of the 9 other classes of every correctly classified image. Writes
``OUT/results.jsonl`` (appended per attack; rerun the same command to resume
after a kill), ``OUT/summary.json`` and ``OUT/examples.png``.
"""

import sys

import jax
from absl import app, flags

from onepixel_jax import job
from onepixel_jax.attack import EARLY_STOP_RULES, AttackConfig
from onepixel_jax.methods import METHODS

FLAGS = flags.FLAGS
PAPER = AttackConfig()  # every flag default below is the paper's (Sec. IV)
flags.DEFINE_string("model", "allconv", "Network: allconv, nin, vgg16 (CIFAR-10, bundled checkpoints); "
                    "efficientnet_lite0 (ImageNet, pretrained weights from a package), alexnet (BVLC, the "
                    "paper's ImageNet network) or alexnet_torchvision (both need --checkpoint). ImageNet is "
                    "attacked non-targeted in the paper: pass --notargeted.")
flags.DEFINE_string("checkpoint", None, "A .msgpack checkpoint instead of the bundled weights (ImageNet models "
                    "also take a PyTorch .pth state dict).")
flags.DEFINE_string("data", "samples", "'samples' (20 lossless test images in the foolbox wheel; for ImageNet "
                    "models its 20 ImageNet validation images), 'tfds', or a path to an image folder / .tar.gz "
                    "(e.g. $ONEPIXEL_CIFAR10; ImageNet: a folder of <wnid>/ folders or ILSVRC2012_val_*.JPEG).")
flags.DEFINE_string("split", "test", "Dataset split.")
flags.DEFINE_integer("num_images", None, "Images drawn at random (seeded) from the split; default all. "
                     "Paper: 500. Only correctly classified ones are attacked.")
flags.DEFINE_integer("pixels", PAPER.pixels, "Pixels changed (paper: 1, 3, 5).")
flags.DEFINE_boolean("targeted", True, "Paper protocol: 9 targeted attacks per image; --notargeted minimises "
                     "the true class instead.")
flags.DEFINE_integer("popsize", PAPER.popsize, f"DE population (paper: {PAPER.popsize}).")
flags.DEFINE_integer("generations", PAPER.generations, f"Maximum DE generations (paper: {PAPER.generations}).")
flags.DEFINE_enum("early_stop", PAPER.early_stop, list(EARLY_STOP_RULES), "paper: target > 0.9 / true < 0.05; "
                  "misclassify: first success; none.")
flags.DEFINE_enum("method", PAPER.method, list(METHODS), "Search: de (the paper's), random (Table VII's "
                  "baseline), corner (every position x 8 extreme colours, CornerSearch's first stage), sparse_rs "
                  "(Sparse-RS), prioritized_corners (OPPSLA's order), guided_corners and learned_corners (ours); the "
                  "others propose "
                  "--popsize candidates "
                  "per step.")
flags.DEFINE_string("corner_prior", None, "learned_corners' prior: a JSON of experiments.fit_corner_prior "
                    "(default: the bundled AllConv prior).")
flags.DEFINE_integer("query_budget", PAPER.query_budget, "Queries per attack (default: popsize x (generations "
                     "+ 1), the paper's 40,400); every method stops there.")
flags.DEFINE_integer("seed", 0, "Seed for the image draw and every attack.")
flags.DEFINE_integer("batch_size", None, "Attacks per forward pass (default: ~1024 images per CPU "
                     "device, ~4096 with incremental inference, ~16384 per accelerator).")
flags.DEFINE_boolean("incremental", True, "Sparse incremental inference for the bundled CIFAR-10 networks "
                     "(same results as dense, ~3-4x faster on CPU); --noincremental runs every candidate dense.")
flags.DEFINE_string("out", None, "Output directory.")
flags.mark_flag_as_required("out")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"experiments.attack: error: unexpected arguments {argv[1:]}")
  try:
    cfg = AttackConfig(pixels=FLAGS.pixels, popsize=FLAGS.popsize, generations=FLAGS.generations,
                       early_stop=FLAGS.early_stop, method=FLAGS.method, query_budget=FLAGS.query_budget,
                       corner_prior=FLAGS.corner_prior)
    spec = job.Job(model=FLAGS.model, checkpoint=FLAGS.checkpoint, data=FLAGS.data, split=FLAGS.split,
                   num_images=FLAGS.num_images, targeted=FLAGS.targeted, seed=FLAGS.seed, config=cfg,
                   batch_size=FLAGS.batch_size, incremental=FLAGS.incremental)
    summary = job.run(spec, FLAGS.out)
  except (ValueError, OSError) as e:
    sys.exit(f"experiments.attack: error: {e}".splitlines()[0])
  print(job.format_summary(summary))
  print(f"wrote {FLAGS.out}/results.jsonl, summary.json, examples.png")


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
