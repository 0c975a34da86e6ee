"""AllConv (paper Table I) on CIFAR-10.

Full schedule (60 epochs; ~35 min/epoch on 2 CPU cores, so a GPU job):

    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=workdirs/allconv

Short CPU schedule used for the bundled checkpoint (2 epochs, ~80 min on
2 CPU cores including the final evaluation and export):

    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=workdirs/allconv --config.num_epochs=2 \
        --config.batch_size=128 --config.learning_rate=0.1

The data defaults to $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz
(--config.data=tfds or a path to override). Kill and rerun to resume.
"""

from experiments.configs.common import base_config


def get_config():
  return base_config("allconv")
