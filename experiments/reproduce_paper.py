r"""Reproduce the paper's tables and figures, one command per table.

    python -m experiments.reproduce_paper --table=all --preset=cpu --out=runs/paper_cpu
    python -m experiments.reproduce_paper --table=4 --preset=paper --out=runs/paper   # GPU/TPU

Writes OUT/<run>/results.jsonl (resumable: rerun the same command after a
kill), OUT/tables.md (ours beside the paper's numbers) and OUT/figures/
(Fig. 5 histogram, Figs. 6-7 heat maps: PNG, PDF and the JSON they are drawn
from). ``python -m analysis.redraw OUT/figures`` redraws the figures from
their JSON without rerunning anything.
"""

import shlex
import sys

import jax
from absl import app, flags

from onepixel_jax.paper import reproduce

FLAGS = flags.FLAGS
flags.DEFINE_list("table", ["all"], "Tables to reproduce: 4, 5, 6, 7, 8 or all.")
flags.DEFINE_enum("preset", "cpu", ["cpu", "paper"], "cpu: fewer images, smaller DE budget (<= 30 min on "
                  "2 cores); paper: 500 images, population 400, 100 generations.")
flags.DEFINE_integer("num_images", None, "Override the preset's number of images drawn.")
flags.DEFINE_integer("seed", None, "Override the preset's seed (image draw and attacks).")
flags.DEFINE_string("data", None, "Override the data: a CIFAR-10 folder/tarball path, 'samples' or 'tfds'.")
flags.DEFINE_string("out", None, "Output directory.")
flags.mark_flag_as_required("out")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"reproduce_paper: error: unexpected arguments {argv[1:]}")
  try:
    tables = list(reproduce.TABLES) if FLAGS.table == ["all"] else FLAGS.table
    reproduce.runs_for(tables)  # validates the table names before anything runs
    cfg = reproduce.preset(FLAGS.preset)
    for name in ("num_images", "seed", "data"):
      if getattr(FLAGS, name) is not None:
        cfg[name] = getattr(FLAGS, name)
    command = "python -m experiments.reproduce_paper " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = reproduce.reproduce(tables, cfg, FLAGS.out, command=command)
  except (ValueError, OSError) as e:
    sys.exit(f"reproduce_paper: error: {e}".splitlines()[0])
  print(md)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
