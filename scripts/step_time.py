"""Images/s of one compiled AllConv/NiN/VGG16 training step at batch 128, timed
with the code of the tree it runs in (the current directory), so that one
script times both sides of a before/after (``scripts/before_after.sh``):
a tree with ``onepixel_jax.compiler`` compiles the step with its "train"
options, an older one with plain ``jax.jit``. Random images and weights.

    PYTHONPATH=. python scripts/step_time.py LABEL [STEPS] [MODEL]

prints one JSON line: "code" (LABEL), model, best and median images/s over STEPS steps.
"""

import functools
import importlib
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax import models, train


def main(label: str, steps: int = 6, name: str = "allconv", batch_size: int = 128) -> dict:
  if hasattr(train, "default_config"):
    config = train.default_config(name)
  else:  # before the configs moved into the library
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
  config.batch_size = batch_size
  module = models.create(name)
  state = train.create_state(module, jax.random.PRNGKey(0), train.make_optimizer(config, 100))
  fn = functools.partial(train.train_step, num_classes=10, label_smoothing=config.label_smoothing,
                         pad=config.crop_padding)
  try:
    from onepixel_jax import compiler
    step = compiler.jit(fn, kind="train")
  except ImportError:
    step = jax.jit(fn)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8))
  y = jnp.asarray(rng.integers(0, 10, batch_size).astype(np.int32))
  key = jax.random.PRNGKey(0)
  jax.block_until_ready(step(state, x, y, key))  # compile
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    jax.block_until_ready(step(state, x, y, key))
    times.append(time.perf_counter() - t)
  return {"code": label, "model": name, "batch_size": batch_size, "steps": steps,
          "best_images_per_s": round(batch_size / min(times), 1),
          "median_images_per_s": round(batch_size / float(np.median(times)), 1)}


if __name__ == "__main__":
  args = sys.argv[1:]
  print(json.dumps(main(args[0], *(int(a) for a in args[1:2]), *args[2:3])), flush=True)
