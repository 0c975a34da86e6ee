"""onepixel_jax: the one-pixel attack (Su, Vargas, Sakurai) as compiled, batched JAX.

Public API:
  attack(predict, images, labels, targets=None, config=AttackConfig(), seed=0, batch_size=None) -> AttackResult
  attack_iter(...)  — the same, streaming one record per finished attack
  AttackConfig, AttackResult
  models.load(name) -> model with .predict(images_uint8) -> probabilities
"""

import importlib

from onepixel_jax.attack import AttackConfig, AttackResult, attack, attack_iter

__all__ = ["AttackConfig", "AttackResult", "attack", "attack_iter", "models", "data"]


def __getattr__(name):  # lazy submodules: `onepixel_jax.models.load(...)` without importing flax up front
  if name in ("models", "data", "de", "perturb", "metrics", "plotting", "train"):
    return importlib.import_module(f"onepixel_jax.{name}")
  raise AttributeError(f"module 'onepixel_jax' has no attribute {name!r}")
