"""Convolution as matrix products over patches, for tiny maps and 1x1 kernels.

XLA's CPU convolution is pathologically slow when the output map is tiny and
the batch is large: a 512-to-512 3x3 convolution on 2x2 maps at batch 800 runs
at ~2 GFLOP/s against ~135 GFLOP/s on 4x4 maps (VGG16's last block); it is
also slow on 1x1 kernels (~40-50 GFLOP/s) and on 6x6 outputs. Written as
products of ``[N*h*w, Cin]`` views with ``[Cin, F]`` kernel slices, the same
convolutions run at matrix-product speed (~100-150 GFLOP/s on this 2-core CPU).
The sums are the same; only their order (hence float rounding, ~1e-7
relative) differs from ``lax.conv_general_dilated``.

``conv_general_dilated`` has the signature of ``lax.conv_general_dilated`` and
can be given to ``flax.linen.Conv(conv_general_dilated=...)``: NHWC/HWIO
convolutions without dilation or groups take the patch route when their output
map has at most ``TINY_OUTPUT_PIXELS`` pixels or their kernel is 1x1
(``POINTWISE_AS_DOT``), and XLA's convolution otherwise (it is the faster one
on 8x8 maps and larger). In a function compiled with YNNPACK dot fusion
(``compiler.xla_convolutions_win``: forward passes, not training) 1x1
convolutions on maps larger than tiny are XLA's own instead (NiN's dense
forward pass 1.56x); tiny maps keep the patch products (with XLA's
convolution VGG16's forward pass ran 0.14x, AllConv's 6x6 1x1 layers 0.92x).
In tuned training steps strided convolutions take one im2col product
(``compiler.strided_convolutions_as_patches``: XLA's backward pass of a
strided convolution is the slow part).
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from jax import lax

from onepixel_jax import compiler

# Output maps with at most this many pixels (6x6 and smaller) take the patch route;
# measured per shape at batch 800 on the 2-core CPU (see experiments/benchmark.py).
TINY_OUTPUT_PIXELS = 36
# 1x1 convolutions as one matrix product, on any map.
POINTWISE_AS_DOT = True


def padding_pairs(padding, in_hw: Sequence[int], kernel_hw: Sequence[int],
                  strides: Sequence[int]) -> list[tuple[int, int]]:
  """'SAME' / 'VALID' / explicit pairs -> [(lo, hi), (lo, hi)] as XLA pads."""
  if isinstance(padding, str):
    return [tuple(p) for p in lax.padtype_to_pads(tuple(in_hw), tuple(kernel_hw), tuple(strides), padding)]
  return [tuple(p) for p in padding]


def patches(x: jnp.ndarray, kernel_hw: Sequence[int], strides: Sequence[int]) -> jnp.ndarray:
  """float[N, H, W, C] (already padded) -> float[N, h, w, K*K*C] VALID patches,
  ordered (kernel row, kernel column, channel) like an HWIO kernel's rows."""
  kh, kw = kernel_hw
  sh, sw = strides
  n, hh, ww, c = x.shape
  oh, ow = (hh - kh) // sh + 1, (ww - kw) // sw + 1
  if kh == kw == 1 and sh == sw == 1:
    return x
  cols = [x[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
          for i in range(kh) for j in range(kw)]
  return jnp.concatenate(cols, axis=-1)


def conv_patches(x: jnp.ndarray, kernel: jnp.ndarray, strides: Sequence[int] = (1, 1),
                 padding="VALID", precision=None, method: str = "shifted") -> jnp.ndarray:
  """NHWC input, HWIO kernel -> NHWC output, as matrix products over patches.

  ``method``: "im2col" builds the ``[N, h, w, K*K*Cin]`` patch matrix and does
  one product; "shifted" sums ``K*K`` products of shifted views
  ``[N, h, w, Cin] @ [Cin, F]`` (no K*K-fold copy of the input; faster on CPU).
  """
  kh, kw, cin, f = kernel.shape
  pads = padding_pairs(padding, x.shape[1:3], (kh, kw), strides)
  if any(p != (0, 0) for p in pads):
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
  dims = (((3,), (0,)), ((), ()))
  if method == "im2col" or kh * kw == 1:
    cols = patches(x, (kh, kw), strides)
    return lax.dot_general(cols, kernel.reshape(kh * kw * cin, f), dims, precision=precision)
  sh, sw = strides
  oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
  y = None
  for i in range(kh):
    for j in range(kw):
      view = x[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
      term = lax.dot_general(view, kernel[i, j], dims, precision=precision)
      y = term if y is None else y + term
  return y


def _out_hw(in_hw, kernel_hw, strides, pads):
  return [(i + lo + hi - k) // s + 1 for i, k, s, (lo, hi) in zip(in_hw, kernel_hw, strides, pads)]


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
  """Drop-in for ``lax.conv_general_dilated``: the patch product on tiny output maps."""
  plain = (
      lhs.ndim == 4
      and all(d in (None, 1) for d in (lhs_dilation or (1,))) and all(d in (None, 1) for d in (rhs_dilation or (1,)))
      and feature_group_count == 1 and batch_group_count == 1 and preferred_element_type is None
      and _is_nhwc_hwio(dimension_numbers, lhs.shape, rhs.shape))
  if plain:
    pads = padding_pairs(padding, lhs.shape[1:3], rhs.shape[:2], window_strides)
    oh, ow = _out_hw(lhs.shape[1:3], rhs.shape[:2], window_strides, pads)
    if rhs.shape[0] * rhs.shape[1] == 1:
      patch_route = POINTWISE_AS_DOT and not (compiler.xla_convolutions_win() and oh * ow > TINY_OUTPUT_PIXELS)
    else:
      patch_route = oh * ow <= TINY_OUTPUT_PIXELS
    if patch_route:
      return conv_patches(lhs, rhs, tuple(window_strides), pads, precision)
    if tuple(window_strides) != (1, 1) and compiler.strided_convolutions_as_patches():
      return conv_patches(lhs, rhs, tuple(window_strides), pads, precision, method="im2col")
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                                  precision=precision, preferred_element_type=preferred_element_type)


def _is_nhwc_hwio(dimension_numbers, lhs_shape, rhs_shape) -> bool:
  if dimension_numbers is None:
    return False
  dn = lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
  return dn == lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
