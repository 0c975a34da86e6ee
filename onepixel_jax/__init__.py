"""onepixel_jax: the one-pixel attack (Su, Vargas, Sakurai) as compiled, batched JAX.

Public API:
  attack(predict, images, labels, targets=None, config=AttackConfig(), seed=0, batch_size=None) -> AttackResult
  attack_iter(...)  — the same, streaming one record per finished attack
  AttackConfig, AttackResult
  models.load(name) -> model with .predict(images_uint8) -> probabilities (composes with jax.jit)
  data.load(source, split, model), data.draw, data.classify

Layout: de, perturb, attack, results (the attack); job (the main job); data/,
models/ (inputs); analysis/ and paper/ (what is done with attacks); figures
(every drawing); train, benchmark.
"""

__version__ = "0.1.0"

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from onepixel_jax.attack import AttackConfig, attack, attack_iter
from onepixel_jax.results import AttackResult

__all__ = ["AttackConfig", "AttackResult", "attack", "attack_iter", "models", "data", "__version__"]

_SUBMODULES = ("models", "data", "de", "perturb", "results", "job", "figures", "analysis", "paper", "train", "compiler",
               "benchmark")

# Modules that moved in this release: the old import paths still work until the
# next release (with a DeprecationWarning) and give the new module. Names that
# moved between modules are listed in the README ("Moved in this release").
MOVED = {
    "experiment": "onepixel_jax.job",
    "imagenet": "onepixel_jax.data.imagenet",
    "query": "onepixel_jax.analysis.query",
    "probe": "onepixel_jax.analysis.probe",
    "corner": "onepixel_jax.analysis.corner_search",
    "openq": "onepixel_jax.analysis.open_questions",
    "history": "onepixel_jax.analysis.history",
    "reproduce": "onepixel_jax.paper.reproduce",
    "baseline": "onepixel_jax.paper.random_search",
    "metrics": "onepixel_jax.paper.metrics",
    "plotting": "onepixel_jax.figures",
}


def _moved(old: str):
  new = MOVED[old]
  warnings.warn(f"onepixel_jax.{old} moved to {new}; the old name goes away in the next release",
                DeprecationWarning, stacklevel=3)
  return importlib.import_module(new)


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Makes ``import onepixel_jax.<old name>`` give the moved module."""

  def find_spec(self, fullname, path=None, target=None):
    pkg, _, old = fullname.rpartition(".")
    if pkg == __name__ and old in MOVED:
      return importlib.util.spec_from_loader(fullname, self)
    return None

  def create_module(self, spec):
    return _moved(spec.name.rpartition(".")[2])

  def exec_module(self, module):
    pass


sys.meta_path.append(_MovedFinder())


def __getattr__(name):  # lazy submodules: `onepixel_jax.models.load(...)` without importing flax up front
  if name in _SUBMODULES:
    return importlib.import_module(f"onepixel_jax.{name}")
  if name in MOVED:
    return _moved(name)
  raise AttributeError(f"module 'onepixel_jax' has no attribute {name!r}")
