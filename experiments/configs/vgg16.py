"""VGG16 (paper Table III) on CIFAR-10.

    python -m experiments.train --config=experiments/configs/vgg16.py \
        --workdir=workdirs/vgg16

60 epochs: not timed here; its forward pass costs about as much as
AllConv's (~35 min/epoch on 2 CPU cores), so run this on a GPU. Kill and
rerun to resume; exports onepixel_jax/weights/vgg16.msgpack (float16, ~40 MB).
"""

from experiments.configs.common import base_config


def get_config():
  c = base_config("vgg16")
  c.learning_rate = 0.05
  return c
