"""The paper's three CIFAR-10 networks (Su et al. 2019, Tables I-III) in Flax linen,
and ConvSmall, the verification literature's small network (for certificates).

Every module takes raw images ``uint8[N, 32, 32, 3]`` (any real dtype in
[0, 255] works) and does its own preprocessing (``x / 255`` then per-channel
CIFAR-10 mean/std normalisation), so attacks always pass raw pixels. Each
returns logits ``float32[N, 10]``; the softmax the paper lists is applied by
:class:`onepixel_jax.models.base.Model`.

Batch normalisation follows every convolution except the final linear
classifier layer (the authors' lab's Keras code; PAPER.md allows it), then
ReLU. Convolutions followed by batch norm carry no bias (it would be absorbed
by the batch-norm offset).

The two printing slips of the paper are resolved as PAPER.md says: AllConv's
seventh layer is a stride-1 *valid* conv3-192 (8x8 -> 6x6, All-CNN-C), and
NiN's second block is conv5-192, conv1-192, conv1-192.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from onepixel_jax.models import patchconv

# Per-channel statistics of the CIFAR-10 training set (RGB, on the [0, 1] scale).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def preprocess(images: jnp.ndarray) -> jnp.ndarray:
  """uint8[N, H, W, 3] raw pixels -> float32[N, H, W, 3] normalised inputs."""
  x = jnp.asarray(images).astype(jnp.float32) / 255.0
  mean = jnp.asarray(CIFAR10_MEAN, jnp.float32)
  std = jnp.asarray(CIFAR10_STD, jnp.float32)
  return (x - mean) / std


BN_MOMENTUM = 0.9  # running-statistics momentum of every CIFAR-10 network's batch norm


class ConvBN(nn.Module):
  """Conv (no bias) -> BatchNorm -> ReLU.

  Convolutions whose output map is tiny (VGG16's 2x2 block) run as a matrix
  product over patches (:mod:`patchconv`): the same sums, without XLA CPU's
  pathologically slow tiny-map convolution.
  """
  features: int
  kernel: int
  stride: int = 1
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Conv(self.features, (self.kernel, self.kernel),
                strides=(self.stride, self.stride), padding=self.padding,
                use_bias=False,
                conv_general_dilated=patchconv.conv_general_dilated)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                     epsilon=1e-5)(x)
    return nn.relu(x)


class AllConv(nn.Module):
  """All convolutional network (Table I; All-CNN-C with batch norm).

  conv3-96, conv3-96, conv3-96/2, conv3-192, conv3-192, dropout 0.3,
  conv3-192/2, conv3-192 valid (8x8 -> 6x6), conv1-192, conv1-10,
  global average pool.
  """
  num_classes: int = 10
  dropout_rate: float = 0.3

  @nn.compact
  def __call__(self, images, train: bool):
    x = preprocess(images)
    x = ConvBN(96, 3)(x, train)
    x = ConvBN(96, 3)(x, train)
    x = ConvBN(96, 3, stride=2)(x, train)            # 32 -> 16
    x = ConvBN(192, 3)(x, train)
    x = ConvBN(192, 3)(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = ConvBN(192, 3, stride=2)(x, train)           # 16 -> 8
    x = ConvBN(192, 3, padding="VALID")(x, train)    # 8 -> 6
    x = ConvBN(192, 1)(x, train)
    x = nn.Conv(self.num_classes, (1, 1))(x)         # linear logits
    return jnp.mean(x, axis=(1, 2))


class NiN(nn.Module):
  """Network in Network (Table II).

  conv5-192, conv1-160, conv1-96, maxpool 3/2, dropout 0.5,
  conv5-192, conv1-192, conv1-192, avgpool 3/2, dropout 0.5,
  conv3-192, conv1-192, conv1-10, global average pool.
  """
  num_classes: int = 10
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, images, train: bool):
    x = preprocess(images)
    x = ConvBN(192, 5)(x, train)
    x = ConvBN(160, 1)(x, train)
    x = ConvBN(96, 1)(x, train)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")   # 32 -> 16
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = ConvBN(192, 5)(x, train)
    x = ConvBN(192, 1)(x, train)
    x = ConvBN(192, 1)(x, train)
    x = nn.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME",
                    count_include_pad=False)                      # 16 -> 8
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = ConvBN(192, 3)(x, train)
    x = ConvBN(192, 1)(x, train)
    x = nn.Conv(self.num_classes, (1, 1))(x)                      # linear logits
    return jnp.mean(x, axis=(1, 2))


VGG16_CONVS: Sequence = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                         512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nn.Module):
  """VGG16 for 32x32 inputs (Table III).

  [64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M] conv3 (same),
  flatten (512 features at 1x1), FC 2048, FC 2048, FC 10.
  """
  num_classes: int = 10

  @nn.compact
  def __call__(self, images, train: bool):
    x = preprocess(images)
    for v in VGG16_CONVS:
      if v == "M":
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      else:
        x = ConvBN(v, 3)(x, train)
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(2048)(x))
    x = nn.relu(nn.Dense(2048)(x))
    return nn.Dense(self.num_classes)(x)               # linear logits


class ConvSmall(nn.Module):
  """ConvSmall, the small CIFAR-10 network of the verification literature
  (ERAN / DeepPoly, Singh et al. 2019; Calzone, OOPSLA 2023): conv 16 4x4/2,
  ReLU, conv 32 4x4/2, ReLU, dense 100, ReLU, dense 10; no batch norm.

  Small enough for :mod:`onepixel_jax.analysis.certify` to decide every
  one-pixel position. The convolutions pad SAME (32 -> 16 -> 8; ERAN's pads
  none, 32 -> 15 -> 6) so that every input row is read and the incremental
  windows apply (:mod:`onepixel_jax.models.incremental`).
  """
  num_classes: int = 10

  @nn.compact
  def __call__(self, images, train: bool):
    del train  # no dropout, no batch norm
    x = preprocess(images)
    x = nn.relu(nn.Conv(16, (4, 4), strides=(2, 2), padding="SAME")(x))   # 32 -> 16
    x = nn.relu(nn.Conv(32, (4, 4), strides=(2, 2), padding="SAME")(x))   # 16 -> 8
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(100)(x))
    return nn.Dense(self.num_classes)(x)                                   # linear logits
