"""VGG16 (paper Table III) on CIFAR-10, the short CPU schedule.

    python -m experiments.train --config=experiments/configs/vgg16.py \
        --workdir=../workdirs/vgg16 [--config.init_from=onepixel_jax/weights/vgg16.msgpack]

Kill and rerun to resume; exports onepixel_jax/weights/vgg16.msgpack
(float16, ~40 MB: commit a new one only when it is clearly better).
"""

from experiments.configs.common import base_config


def get_config():
  c = base_config("vgg16")
  c.learning_rate = 0.05
  return c
