r"""Benchmark: model queries per second of full attacks, dense and incremental,
against bare forward passes and the machine's peak FLOP/s.

  python -m experiments.benchmark --model=allconv,nin,vgg16 --device_counts=1,2 --out=runs/benchmark

prints one JSON object per model and device count (keys ``model``,
``num_devices``, ``dense_queries_per_s``, ``incremental_queries_per_s``,
``forward_queries_per_s``, ``attack_queries_per_s``, ``attack_overhead``,
``dense_peak_fraction``, ``table4_hours`` ...; see
``onepixel_jax.benchmark.run``), then a markdown table for the README; with
``--out`` it writes ``DIR/benchmark.json`` and ``DIR/benchmark.md``. Weights
do not change throughput, so untrained weights are used unless ``--trained``.

``--device_counts=1,2`` re-runs the measurements in a child process per count
with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (N simulated CPU
devices; the attack shards its slots over them). Without it the devices are
whatever JAX sees. Expected runtime on the 2-core CPU with the defaults
(population 400, 10 generations, batch as the attack picks): ~1 min per model
and device count for AllConv and NiN, ~3 min for VGG16. ``--compare_xla``
also measures the forward pass and the dense attack compiled with XLA's
default options (:mod:`onepixel_jax.compiler`).

Training throughput instead of attacks:

  python -m experiments.benchmark --train --model=allconv,nin,vgg16 --out=runs/train_benchmark

prints one JSON object per model and setting (the settings before the
training-speed work, batch 256 with XLA's defaults, and the library's
defaults now, measured interleaved in one process): images/s of the input
pipeline, augmentation, forward+backward, optimizer update and the whole
step, XLA's FLOPs per step and the step's share of the measured peak; then a
markdown table (``DIR/train_benchmark.json`` / ``.md`` with ``--out``).

  python -m experiments.benchmark --products

prints one JSON object per matrix product of a training step (AllConv's
convolutions as products at batch 128, and a square one): GFLOP/s in float32
and with bfloat16 operands (float32 results), and the CPU's bfloat16 flags.

  python -m experiments.benchmark --conv_routes

prints one JSON object per window convolution of the incremental path
(``onepixel_jax.benchmark.CONV_SHAPES``) and option set (XLA's defaults, the
tuned "incremental" options): GFLOP/s of XLA's convolution and of the two
patch-product routes, and XLA's speedup over the faster of them.
"""

import json
import os
import subprocess
import sys

import jax
from absl import app, flags

from onepixel_jax import benchmark
from onepixel_jax.attack import AttackConfig

FLAGS = flags.FLAGS
flags.DEFINE_list("model", ["allconv"], "Models to measure (allconv, nin, vgg16).")
flags.DEFINE_integer("popsize", AttackConfig().popsize, "DE population (default: the paper's).")
flags.DEFINE_integer("generations", 10, f"Generations per attack (paper: {AttackConfig().generations}; "
                     "fewer suffice for a rate).")
flags.DEFINE_integer("pixels", 1, "Pixels per candidate (paper: 1, 3, 5).")
flags.DEFINE_integer("batch_size", None, "Attack slots per forward pass (default: ~1024 images per CPU device).")
flags.DEFINE_integer("num_attacks", None, "Attacks to run (default: one per slot).")
flags.DEFINE_boolean("trained", False, "Use the bundled trained weights instead of random ones.")
flags.DEFINE_boolean("peak", True, "Also measure the machine's peak FLOP/s (a few seconds).")
flags.DEFINE_list("device_counts", [], "Simulated CPU device counts, one child process each (e.g. 1,2).")
flags.DEFINE_string("out", None, "Directory for benchmark.json and benchmark.md.")
flags.DEFINE_boolean("compare_xla", False, "Also measure the forward pass and dense attack with XLA's "
                     "default compiler options.")
flags.DEFINE_boolean("train", False, "Measure training throughput (before / after the training-speed "
                     "settings) instead of attacks.")
flags.DEFINE_boolean("products", False, "Measure a training step's matrix products (forward, weight and "
                     "input gradient of AllConv's convolutions as products) in float32 and with bfloat16 "
                     "operands.")
flags.DEFINE_boolean("conv_routes", False, "Measure the incremental path's window convolutions by XLA's "
                     "convolution and by patch products, with XLA's default and the tuned options.")
flags.DEFINE_boolean("corner", False, "Measure the analyses' corner search (dense with XLA's defaults, "
                     "dense, incremental) instead of attacks.")
flags.DEFINE_list("ablate", [], "Also measure the attack without each of these settings, one at a time: the "
                  "before of a before/after (pointwise, delta: the incremental window route's shortcuts; "
                  "xla_conv: XLA's convolutions where the patch products ran before, both paths).")
flags.DEFINE_integer("repeats", 3, "Timed repetitions per measurement (the best counts).")


def _measure() -> list[dict]:
  from onepixel_jax import models
  results = []
  for name in FLAGS.model:
    if FLAGS.trained:
      model = models.load(name)
    else:
      module = models.create(name)
      model = models.Model(name, module, models.init_variables(module, jax.random.PRNGKey(0)),
                models.CIFAR10_CLASSES, (32, 32))
    cfg = AttackConfig(popsize=FLAGS.popsize, generations=FLAGS.generations, pixels=FLAGS.pixels)
    res = benchmark.run(model, cfg, FLAGS.batch_size, FLAGS.num_attacks, repeats=FLAGS.repeats,
                        peak=FLAGS.peak, compare_xla=FLAGS.compare_xla, ablate=FLAGS.ablate)
    print(json.dumps(res), flush=True)
    results.append(res)
  return results


def _children() -> list[dict]:
  """One child process per device count; collects the JSON lines they print."""
  results = []
  args = [f"--model={','.join(FLAGS.model)}", f"--popsize={FLAGS.popsize}", f"--generations={FLAGS.generations}",
      f"--pixels={FLAGS.pixels}", f"--{'' if FLAGS.trained else 'no'}trained", f"--{'' if FLAGS.peak else 'no'}peak",
      f"--{'' if FLAGS.compare_xla else 'no'}compare_xla", f"--repeats={FLAGS.repeats}",
      f"--ablate={','.join(FLAGS.ablate)}"]
  args += [f"--{k}={getattr(FLAGS, k)}" for k in ("batch_size", "num_attacks") if getattr(FLAGS, k) is not None]
  for count in FLAGS.device_counts:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={int(count)}").strip()
    proc = subprocess.run([sys.executable, "-m", "experiments.benchmark", *args], env=env, check=True,
               stdout=subprocess.PIPE, text=True)
    for line in proc.stdout.splitlines():
      if line.startswith("{"):
        print(line, flush=True)
        results.append(json.loads(line))
  return results


def _train() -> list[dict]:
  results = []
  for name in FLAGS.model:
    for res in benchmark.train_rates(name, repeats=FLAGS.repeats, peak=FLAGS.peak):
      print(json.dumps(res), flush=True)
      results.append(res)
  return results


def main(argv):
  del argv
  if FLAGS.corner:
    from onepixel_jax import models
    results = [benchmark.corner_search_rates(models.load(name)) for name in FLAGS.model]
    for res in results:
      print(json.dumps(res), flush=True)
    return
  if FLAGS.products:
    for res in benchmark.product_rates(repeats=FLAGS.repeats):
      print(json.dumps(res), flush=True)
    return
  if FLAGS.conv_routes:
    for res in benchmark.convolution_rates(repeats=FLAGS.repeats):
      print(json.dumps(res), flush=True)
    return
  if FLAGS.train:
    results, stem = _train(), "train_benchmark"
    table = benchmark.train_markdown_table(results)
  else:
    results, stem = (_children() if FLAGS.device_counts else _measure()), "benchmark"
    table = benchmark.markdown_table(results)
  print(table)
  if FLAGS.out:
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, f"{stem}.json"), "w") as f:
      json.dump(results, f, indent=1)
    with open(os.path.join(FLAGS.out, f"{stem}.md"), "w") as f:
      f.write(table + "\n")


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
