r"""Converts a PyTorch AlexNet state dict (BVLC or torchvision layout) to a Flax checkpoint.

    python -m experiments.convert_alexnet --torch=alexnet.pth --out=alexnet.msgpack

Writes the ``.msgpack`` (float32) and a ``.json`` with its sha256 beside it,
which ``onepixel_jax.models.load("alexnet" | "alexnet_torchvision",
checkpoint=...)`` verifies.
"""

import os
import sys

import numpy as np
from absl import app, flags

from onepixel_jax import models
from onepixel_jax.models import alexnet

FLAGS = flags.FLAGS
flags.DEFINE_string("torch", None, "The .pth state dict (BVLC or torchvision shapes).")
flags.DEFINE_string("out", None, "The .msgpack to write (a .json with its sha256 beside it).")
flags.mark_flags_as_required(["torch", "out"])


def main(argv):
  if len(argv) > 1:
    sys.exit(f"experiments.convert_alexnet: error: unexpected arguments {argv[1:]}")
  try:
    variant, variables = alexnet.load_torch_weights(FLAGS.torch)
    digest = models.save_checkpoint(variables, FLAGS.out,
                                    {"source": os.path.basename(FLAGS.torch), "variant": variant},
                                    dtype=np.float32)
  except (ValueError, OSError) as e:
    sys.exit(f"experiments.convert_alexnet: error: {e}".splitlines()[0])
  name = "alexnet" if variant == "bvlc" else "alexnet_torchvision"
  print(f"wrote {FLAGS.out} ({variant} AlexNet, sha256 {digest[:12]}...); "
        f"use models.load({name!r}, checkpoint={FLAGS.out!r})")


if __name__ == "__main__":
  app.run(main)
