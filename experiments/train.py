"""Trains a CIFAR-10 network and exports the bundled checkpoint.

    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=workdirs/allconv [--config.num_epochs=4] [--data=PATH]

    # re-export the newest checkpoint of a (finished or stopped) run:
    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=workdirs/allconv --export

Reruns resume from the newest checkpoint in --workdir.
"""

import shlex
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from onepixel_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
flags.DEFINE_string("data", None, "CIFAR-10 source: 'tfds' or a tarball/folder path "
                    "(overrides config.data; default $ONEPIXEL_CIFAR10 or "
                    "../shared/data/cifar10-jpeg.tar.gz).")
flags.DEFINE_bool("export", False, "Only export the newest checkpoint in --workdir "
                  "(evaluates the test split) and exit.")
config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
flags.mark_flags_as_required(["workdir", "config"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  config = FLAGS.config
  if FLAGS.data is not None:
    config.data = FLAGS.data
  command = "python -m experiments.train " + " ".join(shlex.quote(a) for a in sys.argv[1:])
  if FLAGS.export:
    meta = train.export(config, FLAGS.workdir, command=command)
    print({k: meta[k] for k in ("test_accuracy", "samples_accuracy", "sha256", "file")})
  else:
    train.train_and_evaluate(config, FLAGS.workdir, command=command)


if __name__ == "__main__":
  app.run(main)
