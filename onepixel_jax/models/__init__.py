"""Model registry: ``load(name, checkpoint=None) -> Model``.

Names: "allconv", "nin", "vgg16" (the paper's CIFAR-10 networks, see
:mod:`onepixel_jax.models.cifar`). Bundled checkpoints live in
``onepixel_jax/weights/<name>.msgpack`` (``flax.serialization`` bytes of
``{'params', 'batch_stats'}``, possibly float16) beside ``<name>.json``
metadata whose ``sha256`` the loader verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Callable

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax.models.base import Model
from onepixel_jax.models.cifar import AllConv, NiN, VGG16

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck")

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "weights"

_REGISTRY: dict[str, Callable[[], nn.Module]] = {
    "allconv": AllConv,
    "nin": NiN,
    "vgg16": VGG16,
}

__all__ = ["Model", "AllConv", "NiN", "VGG16", "CIFAR10_CLASSES", "WEIGHTS_DIR",
           "names", "create", "init_variables", "load", "save_checkpoint",
           "sha256_file"]


def names() -> tuple[str, ...]:
  """The registered model names."""
  return tuple(_REGISTRY)


def create(name: str) -> nn.Module:
  """A fresh (untrained) Flax module for ``name``."""
  if name not in _REGISTRY:
    raise ValueError(f"unknown model {name!r}; valid names: {', '.join(_REGISTRY)}")
  return _REGISTRY[name]()


def init_variables(module: nn.Module, rng: jax.Array,
                   input_size: tuple[int, int] = (32, 32)):
  """Random ``{'params', 'batch_stats'}`` for ``module`` (float32)."""
  x = jnp.zeros((1, *input_size, 3), jnp.uint8)
  return dict(module.init({"params": rng}, x, train=False))


def sha256_file(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _abstract_variables(module: nn.Module, input_size=(32, 32)):
  return jax.eval_shape(lambda: init_variables(module, jax.random.key(0), input_size))


def _read_variables(module: nn.Module, path: pathlib.Path, expected_sha256: str | None):
  """Reads and checks a flax.serialization checkpoint; float32 jnp leaves."""
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  data = path.read_bytes()
  if expected_sha256 is not None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
      raise ValueError(f"checkpoint {path} is corrupt or truncated: sha256 {got[:12]}... "
                       f"does not match {expected_sha256[:12]}... from its metadata")
  target = _abstract_variables(module)
  try:
    state = flax.serialization.msgpack_restore(data)
  except Exception as e:  # msgpack raises several unrelated exception types
    raise ValueError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
  try:
    restored = flax.serialization.from_state_dict(target, state)
  except Exception as e:
    raise ValueError(f"checkpoint {path} does not match the architecture: {e}") from None
  flat_t = jax.tree_util.tree_leaves_with_path(target)
  flat_r = jax.tree_util.tree_leaves(restored)
  for (kp, t), r in zip(flat_t, flat_r):
    if tuple(np.shape(r)) != tuple(t.shape):
      raise ValueError(f"checkpoint {path} does not match the architecture at "
                       f"{jax.tree_util.keystr(kp)}: shape {np.shape(r)} != {t.shape}")
  return jax.tree_util.tree_map(lambda r: jnp.asarray(r, jnp.float32), restored)


def load(name: str, checkpoint: str | os.PathLike | None = None) -> Model:
  """Loads a trained model.

  Args:
    name: "allconv", "nin" or "vgg16".
    checkpoint: a ``.msgpack`` file written by :func:`save_checkpoint`;
      default: the bundled ``onepixel_jax/weights/<name>.msgpack``. When a
      ``.json`` with a ``sha256`` sits beside it, the file is verified.

  Raises:
    ValueError: unknown name, no bundled checkpoint, corrupt/truncated file.
    FileNotFoundError: an explicit checkpoint path that does not exist.
  """
  module = create(name)
  if checkpoint is None:
    path = WEIGHTS_DIR / f"{name}.msgpack"
    if not path.is_file():
      raise ValueError(
          f"no bundled checkpoint for {name!r} ({path} missing); train one with "
          f"`python -m experiments.train --config=experiments/configs/{name}.py "
          f"--workdir=workdirs/{name} --data=PATH` (it exports to {path})")
  else:
    path = pathlib.Path(checkpoint)
  meta_path = path.with_suffix(".json")
  expected = None
  if meta_path.is_file():
    try:
      expected = json.loads(meta_path.read_text()).get("sha256")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"checkpoint metadata {meta_path} is unreadable: {e}") from None
  elif checkpoint is None:
    raise ValueError(f"bundled checkpoint metadata {meta_path} is missing")
  variables = _read_variables(module, path, expected)
  return Model(name=name, module=module, variables=variables,
               class_names=CIFAR10_CLASSES, input_size=(32, 32))


def save_checkpoint(variables, path, metadata: dict | None = None,
                    dtype=np.float16) -> str:
  """Writes ``variables`` to ``path`` (.msgpack, leaves cast to ``dtype``) and
  ``metadata`` plus the file's sha256 to ``path.with_suffix('.json')``.

  Returns the sha256 hex digest.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  state = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype),
                                 flax.serialization.to_state_dict(
                                     {"params": variables["params"],
                                      "batch_stats": variables.get("batch_stats", {})}))
  data = flax.serialization.msgpack_serialize(state)
  path.write_bytes(data)
  digest = hashlib.sha256(data).hexdigest()
  meta = dict(metadata or {})
  meta["sha256"] = digest
  meta["dtype"] = np.dtype(dtype).name
  meta["file"] = path.name
  path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
  return digest
