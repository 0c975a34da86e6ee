r"""Reproduce the paper's tables and figures, one command per table.

    python -m experiments.reproduce_paper --table=all --preset=cpu --out=runs/paper_cpu
    python -m experiments.reproduce_paper --table=all --preset=cpu-paper --out=docs/paper_cpu  # hours; resumable
    python -m experiments.reproduce_paper --table=4 --preset=paper --out=runs/paper   # GPU/TPU

Writes OUT/<run>/results.jsonl (resumable: rerun the same command after a
kill), OUT/tables.md (ours beside the paper's numbers) and OUT/figures/
(Fig. 5 histogram, Figs. 6-7 heat maps: PNG, PDF and the JSON they are drawn
from). ``python -m analysis.redraw OUT/figures`` redraws the figures from
their JSON without rerunning anything. Before running, it measures each
network's attack rate here and prints the estimated hours of what every run
has left (a resumed run's attacks are expected to cost what its finished ones
did; ``--estimate_only`` stops there); ``--report_only`` regenerates tables.md
and the figures from the results files already in OUT, running no attack.
"""

import json
import shlex
import sys

import jax
from absl import app, flags

from onepixel_jax import benchmark, models
from onepixel_jax.attack import AttackConfig, default_batch_size
from onepixel_jax.paper import reproduce

FLAGS = flags.FLAGS
flags.DEFINE_list("table", ["all"], "Tables to reproduce: 4, 5, 6, 7, 8 or all.")
flags.DEFINE_enum("preset", "cpu", list(reproduce.PRESETS), "paper: 500 images, population 400, 100 "
                  "generations; cpu-paper: the paper's DE on 100 / 30 images per network (CPU hours); "
                  "cpu: 10 images, a smaller DE budget (minutes).")
flags.DEFINE_list("network", list(reproduce.CIFAR_MODELS), "Networks whose runs to make (the report "
                  "covers every network's results already in OUT).")
flags.DEFINE_boolean("estimate_only", False, "Print the estimated hours and stop.")
flags.DEFINE_boolean("report_only", False, "Only regenerate tables.md and the figures from OUT's results.")
flags.DEFINE_integer("num_images", None, "Override the preset's number of images drawn.")
flags.DEFINE_integer("seed", None, "Override the preset's seed (image draw and attacks).")
flags.DEFINE_string("data", None, "Override the data: a CIFAR-10 folder/tarball path, 'samples' or 'tfds'.")
flags.DEFINE_string("out", None, "Output directory.")
flags.mark_flag_as_required("out")


def _rates(tables, cfg, done) -> dict[tuple[str, int], float]:
  """Attack queries per second of each (network, pixels) the tables still
  need (runs whose ``done`` records are complete are skipped),
  measured with a short run of the preset's population and that many pixels
  (a 5-pixel attack goes dense early and runs ~4x slower than a 1-pixel one).
  Five generations: with two, a call's fixed costs (the clean pass, the first
  population) made 5-pixel NiN read 196 queries/s against 230 with five and
  231 in the full run (2 CPU cores)."""
  rates, loaded = {}, {}
  for run in reproduce.runs_for(tables, FLAGS.network):
    key = (run.model, run.pixels)
    if key in rates or len(done.get(run.name, [])) >= reproduce.planned_attacks(run, cfg) \
        or reproduce.available(run.model):
      continue
    if run.model not in loaded:
      loaded[run.model] = models.load(run.model)
    model = loaded[run.model]
    dev = jax.local_devices()
    b = default_batch_size(cfg.popsize, 10**9, len(dev), dev[0].platform, model.supports_incremental, run.pixels)
    rates[key] = benchmark.attack_queries_per_s(
        model, AttackConfig(pixels=run.pixels, popsize=cfg.popsize, generations=5), num_attacks=b, batch_size=b)
    print(f"{run.model}, {run.pixels} pixel(s): {rates[key]:,.0f} attack queries/s here", flush=True)
  return rates


def main(argv):
  if len(argv) > 1:
    sys.exit(f"reproduce_paper: error: unexpected arguments {argv[1:]}")
  try:
    tables = list(reproduce.TABLES) if FLAGS.table == ["all"] else FLAGS.table
    reproduce.runs_for(tables, FLAGS.network)  # validates the names before anything runs
    cfg = reproduce.preset(FLAGS.preset)
    for name in ("num_images", "seed", "data"):
      if getattr(FLAGS, name) is not None:
        cfg[name] = getattr(FLAGS, name)
    command = "python -m experiments.reproduce_paper " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if FLAGS.report_only:
      print(reproduce.write_report(tables, cfg, FLAGS.out, {}, command))
      return
    done = reproduce.read_runs(reproduce.TABLES, FLAGS.out)  # other runs inform a new one's cost
    print(json.dumps(reproduce.estimate_hours(tables, cfg, _rates(tables, cfg, done), done), indent=1), flush=True)
    if FLAGS.estimate_only:
      return
    md = reproduce.reproduce(tables, cfg, FLAGS.out, command=command, networks=FLAGS.network)
  except (ValueError, OSError) as e:
    sys.exit(f"reproduce_paper: error: {e}".splitlines()[0])
  print(md)


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
