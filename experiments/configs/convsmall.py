"""ConvSmall (the verification literature's small CIFAR-10 network) on CIFAR-10.

    python -m experiments.train --config=experiments/configs/convsmall.py \
        --workdir=../workdirs/convsmall

A few minutes on 2 CPU cores; exports onepixel_jax/weights/convsmall.msgpack,
the network :mod:`onepixel_jax.analysis.certify` decides every one-pixel
position of. ERAN's ConvSmall reaches ~60% (no augmentation); the library's
short schedule (label smoothing, +-2-pixel translations) is kept, with a lower
peak learning rate since the network has no batch norm.
"""

from experiments.configs.common import base_config


def get_config():
  c = base_config("convsmall")
  c.learning_rate = 0.05
  c.num_epochs = 20
  c.checkpoint_every_steps = 1000
  return c
