"""Attack queries/s against the number of slots (attacks per forward pass),
for choosing ``attack.CPU_MAX_SLOTS``: 100 random images, each attacked to a
400-query budget with no early stop, bundled weights, every slot count
timed twice, interleaved, in one process (the best counts).

    PYTHONPATH=. python scripts/slot_rates.py MODEL METHOD SLOTS
    PYTHONPATH=. python scripts/slot_rates.py nin random 20,50,100

prints one JSON line: model, method, queries/s per slot count.
"""

import json
import sys
import time

import jax
import numpy as np

import onepixel_jax as opj
from onepixel_jax import models


def main(name: str, method: str, slots: list[int], n: int = 100, budget: int = 400, step: int = 16) -> dict:
  model = models.load(name)
  images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  labels = np.asarray(np.argmax(jax.jit(model.predict)(images), -1))
  cfg = opj.AttackConfig(method=method, popsize=step, generations=budget // step - 1, query_budget=budget,
                         early_stop="none")
  for b in slots:  # compile each slot count
    opj.attack(model, images[:b], labels[:b], config=cfg, batch_size=b)
  best = {b: float("inf") for b in slots}
  for _ in range(2):
    for b in slots:
      t = time.perf_counter()
      opj.attack(model, images, labels, config=cfg, batch_size=b)
      best[b] = min(best[b], time.perf_counter() - t)
  return {"model": name, "method": method, "queries_per_s": {b: round(n * budget / t) for b, t in best.items()}}


if __name__ == "__main__":
  print(json.dumps(main(sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")])), flush=True)
