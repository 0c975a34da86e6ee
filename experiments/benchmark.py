r"""Benchmark: model queries per second of a full attack vs bare forward passes.

    python -m experiments.benchmark --model=allconv --generations=10

prints one JSON object per model (keys ``model``, ``forward_queries_per_s``,
``attack_queries_per_s``, ``attack_overhead`` ...) and, with ``--out``, writes
them to ``DIR/benchmark.json``. Weights do not change throughput, so untrained
weights are used unless ``--trained``. For several CPU devices:
``XLA_FLAGS=--xla_force_host_platform_device_count=2``.
"""

import json
import os

import jax
from absl import app, flags

from onepixel_jax import benchmark
from onepixel_jax.attack import AttackConfig

FLAGS = flags.FLAGS
flags.DEFINE_list("model", ["allconv"], "Models to measure (allconv, nin, vgg16).")
flags.DEFINE_integer("popsize", 400, "DE population (paper: 400).")
flags.DEFINE_integer("generations", 10, "Generations per attack (paper: 100; fewer suffice for a rate).")
flags.DEFINE_integer("batch_size", None, "Attack slots per forward pass (default: ~1024 images per CPU device).")
flags.DEFINE_integer("num_attacks", None, "Attacks to run (default: one per slot).")
flags.DEFINE_boolean("trained", False, "Use the bundled trained weights instead of random ones.")
flags.DEFINE_string("out", None, "Directory for benchmark.json.")


def main(argv):
    del argv
    from onepixel_jax import models
    results = []
    for name in FLAGS.model:
        if FLAGS.trained:
            model = models.load(name)
        else:
            module = models.create(name)
            model = models.Model(name, module, models.init_variables(module, jax.random.PRNGKey(0)),
                                 models.CIFAR10_CLASSES, (32, 32))
        cfg = AttackConfig(popsize=FLAGS.popsize, generations=FLAGS.generations)
        res = benchmark.run(model, cfg, FLAGS.batch_size, FLAGS.num_attacks)
        print(json.dumps(res), flush=True)
        results.append(res)
    if FLAGS.out:
        os.makedirs(FLAGS.out, exist_ok=True)
        with open(os.path.join(FLAGS.out, "benchmark.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    jax.config.config_with_absl()
    app.run(main)
