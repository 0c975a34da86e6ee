"""AlexNet in Flax linen: BVLC's (the paper's ImageNet network) and torchvision's,
with a converter from a PyTorch state dict.

- ``variant="bvlc"`` (registered as ``"alexnet"``): Caffe's ``bvlc_alexnet``
  (Krizhevsky et al. 2012 as trained by BVLC), input ``uint8[N, 227, 227, 3]``:
  conv11-96/4 (valid), ReLU, LRN, maxpool 3/2, conv5-256 (2 groups), ReLU,
  LRN, maxpool 3/2, conv3-384, conv3-384 (2 groups), conv3-256 (2 groups),
  maxpool 3/2, FC 4096, FC 4096, FC 1000. LRN: size 5, alpha 1e-4, beta 0.75,
  k 1 (Caffe's and ``torch.nn.LocalResponseNorm``'s definition, alpha / size).
  Preprocessing is Caffe's: RGB -> BGR, minus the ILSVRC-2012 mean pixel, on
  the 0..255 scale.
- ``variant="torchvision"`` (registered as ``"alexnet_torchvision"``):
  ``torchvision.models.alexnet`` (Krizhevsky 2014, "one weird trick"),
  input 224: conv11-64/4 (pad 2), maxpool, conv5-192, maxpool, conv3-384,
  conv3-256, conv3-256, maxpool, adaptive average pool to 6x6, FC 4096,
  FC 4096, FC 1000; no LRN, no groups. Preprocessing ``(x / 255 - mean) / std``
  with the ImageNet RGB statistics.

Both return logits ``float32[N, 1000]``. No AlexNet weights ship with this
project; convert a state dict you have::

    python -m experiments.convert_alexnet --torch=alexnet.pth --out=alexnet.msgpack

then ``models.load("alexnet", checkpoint="alexnet.msgpack")`` (BVLC shapes) or
``models.load("alexnet_torchvision", checkpoint=...)`` (torchvision shapes);
``load`` also accepts the ``.pth`` directly.
"""

from __future__ import annotations

import os
import re

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from onepixel_jax.models.torch_checkpoint import read_state_dict

VARIANTS = {
    # conv (features, kernel, stride, padding, groups, lrn, pool after), input size
    "bvlc": dict(convs=((96, 11, 4, 0, 1, True, True), (256, 5, 1, 2, 2, True, True), (384, 3, 1, 1, 1, False, False),
                        (384, 3, 1, 1, 2, False, False), (256, 3, 1, 1, 2, False, True)),
                 input_size=(227, 227)),
    "torchvision": dict(convs=((64, 11, 4, 2, 1, False, True), (192, 5, 1, 2, 1, False, True),
                               (384, 3, 1, 1, 1, False, False), (256, 3, 1, 1, 1, False, False),
                               (256, 3, 1, 1, 1, False, True)),
                        input_size=(224, 224)),
}
# Caffe's ILSVRC-2012 mean pixel (BGR, 0..255): the mean of ilsvrc_2012_mean.npy.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def preprocess(images, variant: str) -> jnp.ndarray:
  """uint8[N, H, W, 3] RGB -> the float32 input the variant's weights expect."""
  x = jnp.asarray(images).astype(jnp.float32)
  if variant == "bvlc":
    return x[..., ::-1] - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32)
  return (x / 255.0 - jnp.asarray(TORCHVISION_MEAN, jnp.float32)) / jnp.asarray(TORCHVISION_STD, jnp.float32)


def local_response_norm(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
  """Across-channel LRN over the last axis, as Caffe and ``torch.nn.LocalResponseNorm``."""
  sq = jnp.pad(x * x, [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
  c = x.shape[-1]
  s = sum(sq[..., i:i + c] for i in range(size))
  return x / (k + (alpha / size) * s) ** beta


def adaptive_avg_pool(x, out: tuple[int, int]):
  """``torch.nn.AdaptiveAvgPool2d`` on NHWC (identity when the map is already ``out``)."""
  h, w = x.shape[1:3]
  if (h, w) == tuple(out):
    return x
  rows = []
  for i in range(out[0]):
    r0, r1 = (i * h) // out[0], -(-((i + 1) * h) // out[0])
    cols = []
    for j in range(out[1]):
      c0, c1 = (j * w) // out[1], -(-((j + 1) * w) // out[1])
      cols.append(jnp.mean(x[:, r0:r1, c0:c1, :], axis=(1, 2)))
    rows.append(jnp.stack(cols, axis=1))
  return jnp.stack(rows, axis=1)


class AlexNet(nn.Module):
  """AlexNet: uint8[N, 227, 227, 3] (bvlc) or [N, 224, 224, 3] (torchvision) -> logits [N, 1000]."""
  variant: str = "bvlc"
  num_classes: int = 1000
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, images, train: bool = False):
    if self.variant not in VARIANTS:
      raise ValueError(f"AlexNet variant must be one of {tuple(VARIANTS)}, got {self.variant!r}")
    x = preprocess(images, self.variant)
    for i, (f, k, s, p, g, lrn, pool) in enumerate(VARIANTS[self.variant]["convs"]):
      x = nn.Conv(f, (k, k), strides=(s, s), padding=((p, p), (p, p)), feature_group_count=g,
                  name=f"conv{i + 1}")(x)
      x = nn.relu(x)
      if lrn:
        x = local_response_norm(x)
      if pool:
        x = nn.max_pool(x, (3, 3), strides=(2, 2))
    if self.variant == "torchvision":
      x = adaptive_avg_pool(x, (6, 6))
    x = x.reshape((x.shape[0], -1))  # (H, W, C) order; the converter permutes fc6
    for i in (6, 7):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x) if self.variant == "torchvision" else x
      x = nn.relu(nn.Dense(4096, name=f"fc{i}")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x) if self.variant == "bvlc" else x
    return nn.Dense(self.num_classes, name="fc8")(x)


# --------------------------------------------------------------------------
# Converter from a PyTorch state dict (torchvision's ``features.N`` /
# ``classifier.N`` layout; BVLC ports that keep it, with LRN layers shifting
# the indices, convert too).
# --------------------------------------------------------------------------


def _ordered(sd, prefix: str, ndim: int):
  """[(weight, bias)] of the ``prefix.N.weight`` entries with ``ndim`` dims, by N."""
  found = []
  for key, w in sd.items():
    m = re.fullmatch(rf"{prefix}\.(\d+)\.weight", key)
    if m and np.ndim(w) == ndim:
      bias = sd.get(f"{prefix}.{m.group(1)}.bias")
      if bias is None:
        raise ValueError(f"AlexNet state dict has {key} but no {prefix}.{m.group(1)}.bias")
      found.append((int(m.group(1)), np.asarray(w, np.float32), np.asarray(bias, np.float32)))
  return [(w, b) for _, w, b in sorted(found, key=lambda t: t[0])]


def detect_variant(sd: dict) -> str:
  """"bvlc" or "torchvision" from the first convolution's shape."""
  convs = _ordered(sd, "features", 4)
  if not convs:
    raise ValueError("not an AlexNet state dict: no features.N.weight convolutions")
  first = convs[0][0].shape
  for name, spec in VARIANTS.items():
    if first == (spec["convs"][0][0], 3, 11, 11):
      return name
  raise ValueError(f"not an AlexNet state dict: first convolution has shape {first}")


def convert_state_dict(sd: dict[str, np.ndarray], variant: str | None = None) -> dict:
  """PyTorch AlexNet state dict -> Flax ``{'params': ...}`` for :class:`AlexNet`.

  Convolutions (O, I/groups, kh, kw) become (kh, kw, I/groups, O); linear
  layers are transposed; fc6's inputs are permuted from PyTorch's (C, H, W)
  flattening to this module's (H, W, C).
  """
  variant = variant or detect_variant(sd)
  spec = VARIANTS[variant]["convs"]
  convs, fcs = _ordered(sd, "features", 4), _ordered(sd, "classifier", 2)
  if len(convs) != 5 or len(fcs) != 3:
    raise ValueError(f"AlexNet state dict needs 5 features.N and 3 classifier.N layers, "
                     f"found {len(convs)} and {len(fcs)}")
  params = {}
  cin = 3
  for i, ((w, b), (f, k, _, _, g, _, _)) in enumerate(zip(convs, spec)):
    if w.shape != (f, cin // g, k, k) or b.shape != (f,):
      raise ValueError(f"conv{i + 1} of a {variant} AlexNet must be {(f, cin // g, k, k)}, got {w.shape}")
    params[f"conv{i + 1}"] = {"kernel": np.transpose(w, (2, 3, 1, 0)), "bias": b}
    cin = f
  (w6, b6), (w7, b7), (w8, b8) = fcs
  if w6.shape != (4096, cin * 36) or w7.shape != (4096, 4096) or w8.shape != (1000, 4096):
    raise ValueError(f"AlexNet classifier shapes {w6.shape}, {w7.shape}, {w8.shape} do not fit")
  w6 = w6.reshape(4096, cin, 6, 6).transpose(2, 3, 1, 0).reshape(36 * cin, 4096)
  params["fc6"] = {"kernel": w6, "bias": b6}
  params["fc7"] = {"kernel": w7.T, "bias": b7}
  params["fc8"] = {"kernel": w8.T, "bias": b8}
  return {"params": params}


def load_torch_weights(path: str | os.PathLike, variant: str | None = None) -> tuple[str, dict]:
  """(variant, Flax variables) from a ``.pth`` state dict (read without PyTorch)."""
  sd = read_state_dict(path)
  variant = variant or detect_variant(sd)
  return variant, convert_state_dict(sd, variant)


if __name__ == "__main__":  # the converter moved to an entry point in this release
  raise SystemExit("the AlexNet converter moved: python -m experiments.convert_alexnet --torch=alexnet.pth "
                   "--out=alexnet.msgpack")
