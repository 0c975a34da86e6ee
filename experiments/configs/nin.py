"""NiN (paper Table II) on CIFAR-10, the short CPU schedule.

    python -m experiments.train --config=experiments/configs/nin.py \
        --workdir=../workdirs/nin [--config.init_from=onepixel_jax/weights/nin.msgpack]

Kill and rerun to resume; exports onepixel_jax/weights/nin.msgpack.
"""

from experiments.configs.common import base_config


def get_config():
  return base_config("nin")
