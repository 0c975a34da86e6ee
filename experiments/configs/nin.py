"""NiN (paper Table II) on CIFAR-10.

    python -m experiments.train --config=experiments/configs/nin.py \
        --workdir=workdirs/nin

60 epochs: not timed here; AllConv takes ~35 min/epoch on 2 CPU cores, so
run this on a GPU. Kill and rerun to resume; exports
onepixel_jax/weights/nin.msgpack.
"""

from experiments.configs.common import base_config


def get_config():
  return base_config("nin")
