"""AllConv (paper Table I) on CIFAR-10, the short CPU schedule.

    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=../workdirs/allconv [--config.num_epochs=8]

Continue from the bundled checkpoint with a fresh schedule (the exported
metadata's ``lineage`` records both stages):

    python -m experiments.train --config=experiments/configs/allconv.py \
        --workdir=../workdirs/allconv_more \
        --config.init_from=onepixel_jax/weights/allconv.msgpack

The data defaults to $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz
(--config.data=tfds or a path to override). Kill and rerun to resume; keep
the workdir outside the repository.
"""

from experiments.configs.common import base_config


def get_config():
  return base_config("allconv")
