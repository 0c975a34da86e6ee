"""Sparse incremental inference: a candidate's probabilities from its clean image
and the ``k`` pixels it changes, recomputing only what those pixels reach.

A one-pixel candidate differs from its clean image in one input pixel, so after
a 3x3 convolution only a 3x3 window of the first map differs, after two a 5x5
window, and so on. For each image the clean activations are computed once (a
dense forward pass of ``B`` images), and for each candidate only the changed
windows are recomputed, layer by layer:

* A changed region is a *patch*: a window of static size ``(h, w)`` at a
  dynamic, per-candidate position. The input layer's patch is the 1x1 pixel.
* A window layer (convolution + batch norm (eval) + ReLU, max pool, average
  pool) with kernel ``K``, stride ``S`` and padding ``(lo, hi)`` maps a patch of
  ``h`` rows starting at row ``y`` to the output rows
  ``o0 .. o0 + h' - 1``, ``h' = min(ceil((h + K - 1) / S), H_out)``,
  ``o0 = clip(ceil((y + lo - K + 1) / S), 0, H_out - h')`` (the first output
  whose receptive field reaches the patch; clipped so that the window stays
  inside the map), likewise for columns. Those outputs are computed from the
  input rows ``o0 * S .. o0 * S + (h' - 1) * S + K - 1`` of the clean map padded
  as the layer pads it (zeros for convolutions and average pools, -inf for max
  pools), with the patch written in: a VALID convolution / pool over a small
  window. Average pools without padded counts divide by the matching window of
  the dense layer's count map.
* ``k > 1`` pixels: each pixel keeps its own patch, and every patch's input
  window has *all* ``k`` patches written in (in order, so the later of two
  tuples at the same pixel wins, as in ``perturb.apply``). Outside the union
  of its patches the candidate's map equals the clean map, so this is exact.
* A layer becomes dense when its ``k`` windows would cover at least
  ``default_dense_fraction(k)`` of its output map (or it is global: global average
  pooling, flatten, dense): the patches are written into the clean map and the
  rest of the network runs dense on ``B * P`` maps. One pixel's windows run
  until they would cover the whole map (``DENSE_FRACTION``); ``k > 1`` pixels'
  give way at ``MULTI_PIXEL_DENSE_FRACTION`` (the "early_dense" shortcut), as
  each of their windows also copies a patch-wide margin.
* One pixel (k = 1) through a stride-1 convolution with a kernel wider than
  1x1: by linearity, the clean map's pre-activation window plus the
  convolution of the patch's change alone (``_conv_delta_layer``), which
  multiplies ``h x w`` input rows by the kernel instead of ``(h + K - 1)^2``
  output rows (AllConv's 8x8 window at 16x16: 36 against 64). Measured in
  one run on the 2-core CPU (``experiments.benchmark``): the corner search's
  batch of 4,096 one-pixel candidates of an image 1,161 -> 1,720 queries/s on
  AllConv, 829 -> 2,143 on NiN (its 5x5 convolutions), 532 -> 544 on VGG16.
* A 1x1 stride-1 convolution (NiN's six) maps each position alone, and each
  patch already holds the candidate's map on its window, so it runs on the
  patches themselves (``_pointwise_layer``), for any ``k``: no window is cut
  from the clean map and no patch pasted into it.

Batch norm, ReLU and the input normalisation are per-pixel, so they apply to
windows as they are. For AllConv one pixel's windows are 3, 5 (32x32), 4, 6, 8
(16x16), 5 (8x8), and the 6x6 layer is dense: ~52 of its 270 MMACs per query.

The networks are described layer by layer (``describe``); one piece of code
runs every description. Results equal the dense ``Model.apply`` to float
tolerance (the convolutions sum in a different order).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from onepixel_jax import compiler
from onepixel_jax.models import cifar, patchconv

# A layer computes one pixel's windows while they cover less than this share of its output map.
DENSE_FRACTION = 1.0
# The same for k > 1 pixels ("early_dense"). Measured on the 2-core CPU, the
# incremental pass of a DE batch (population 400, the attack's slots), bundled
# weights, both plans compiled in one process and timed interleaved (best of
# 5) against 1.0: NiN 3 pixels 2.66x (its 5x5 convolution at 16x16 went dense),
# VGG16 3 pixels 1.23x, AllConv 3 pixels 1.06-1.17x, AllConv and VGG16 5
# pixels 1.08x and 1.06x; 0.5 or 0.4 gained nothing more (VGG16 3 pixels
# 1.02x over 0.7, AllConv 3 pixels 1.03x over 1.0).
MULTI_PIXEL_DENSE_FRACTION = 0.7
# The window route's shortcuts: "pointwise" (``_pointwise_layer``: 1x1
# convolutions on the patches themselves), "delta" (``_conv_delta_layer``:
# one-pixel candidates' stride-1 convolutions by linearity) and "early_dense"
# (``MULTI_PIXEL_DENSE_FRACTION``). SHORTCUTS holds those in use, all but
# inside ``without_shortcuts()`` / ``windows_only()``.
ALL_SHORTCUTS = frozenset({"pointwise", "delta", "early_dense"})
SHORTCUTS = ALL_SHORTCUTS

_BN_EPSILON = 1e-5  # cifar.ConvBN's nn.BatchNorm epsilon


# --------------------------------------------------------------------------
# Layer descriptions.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Conv:
  """``name`` holds {'Conv_0': kernel, 'BatchNorm_0'} (``bn``: conv, BN, ReLU)
  or a bare conv with bias (``bn=False``): no activation (the logits layer),
  or ReLU with ``relu=True`` (ConvSmall)."""
  name: str
  kernel: int
  stride: int = 1
  padding: str = "SAME"
  bn: bool = True
  relu: bool = False  # ReLU after a bare conv (bn=False); BN layers always have one

  window = property(lambda self: self.kernel)


@dataclasses.dataclass(frozen=True)
class Pool:
  """``kind`` 'max' or 'avg' (average without padded positions)."""
  kind: str
  kernel: int
  stride: int
  padding: str = "VALID"

  window = property(lambda self: self.kernel)


@dataclasses.dataclass(frozen=True)
class GlobalMean:
  """Mean over the spatial axes."""


@dataclasses.dataclass(frozen=True)
class Dense:
  """Flattens the map, then a dense layer (``relu`` after it or not)."""
  name: str
  relu: bool = True


Layer = Any


def _allconv() -> tuple[Layer, ...]:
  return (Conv("ConvBN_0", 3), Conv("ConvBN_1", 3), Conv("ConvBN_2", 3, 2),
          Conv("ConvBN_3", 3), Conv("ConvBN_4", 3), Conv("ConvBN_5", 3, 2),
          Conv("ConvBN_6", 3, 1, "VALID"), Conv("ConvBN_7", 1), Conv("Conv_0", 1, bn=False), GlobalMean())


def _nin() -> tuple[Layer, ...]:
  return (Conv("ConvBN_0", 5), Conv("ConvBN_1", 1), Conv("ConvBN_2", 1), Pool("max", 3, 2, "SAME"),
          Conv("ConvBN_3", 5), Conv("ConvBN_4", 1), Conv("ConvBN_5", 1), Pool("avg", 3, 2, "SAME"),
          Conv("ConvBN_6", 3), Conv("ConvBN_7", 1), Conv("Conv_0", 1, bn=False), GlobalMean())


def _vgg16() -> tuple[Layer, ...]:
  layers, i = [], 0
  for v in cifar.VGG16_CONVS:
    if v == "M":
      layers.append(Pool("max", 2, 2))
    else:
      layers.append(Conv(f"ConvBN_{i}", 3))
      i += 1
  return (*layers, Dense("Dense_0"), Dense("Dense_1"), Dense("Dense_2", relu=False))


def _convsmall() -> tuple[Layer, ...]:
  return (Conv("Conv_0", 4, 2, bn=False, relu=True), Conv("Conv_1", 4, 2, bn=False, relu=True),
          Dense("Dense_0"), Dense("Dense_1", relu=False))


def describe(module) -> tuple[Layer, ...] | None:
  """The layer description of a ``cifar`` module (eval mode), None for others."""
  for cls, fn in ((cifar.AllConv, _allconv), (cifar.NiN, _nin), (cifar.VGG16, _vgg16),
                  (cifar.ConvSmall, _convsmall)):
    if type(module) is cls:
      return fn()
  return None


# --------------------------------------------------------------------------
# Dense layers (the clean images, and candidates once a layer is dense).
# --------------------------------------------------------------------------


def _pads(layer, hw):
  return patchconv.padding_pairs(layer.padding, hw, (layer.window,) * 2, (layer.stride,) * 2)


def _bn_relu(variables, name, y):
  """Eval-mode batch norm then ReLU, in flax.linen.BatchNorm's order of operations."""
  p = variables["params"][name]["BatchNorm_0"]
  s = variables["batch_stats"][name]["BatchNorm_0"]
  y = y - s["mean"]
  mul = lax.rsqrt(s["var"] + _BN_EPSILON) * p["scale"]
  return jax.nn.relu(y * mul + p["bias"])


def _conv_out(variables, layer: Conv, y):
  """The per-pixel part after the convolution."""
  if layer.bn:
    return _bn_relu(variables, layer.name, y)
  y = y + variables["params"][layer.name]["bias"]
  return jax.nn.relu(y) if layer.relu else y


def _kernel(variables, layer: Conv):
  p = variables["params"][layer.name]
  return (p["Conv_0"] if layer.bn else p)["kernel"]


_DN = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # NHWC, HWIO


def _conv(x, kernel, stride, padding):
  return patchconv.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=_DN)


def _pool_sum_or_max(layer: Pool, x, pads):
  init, op = (-jnp.inf, lax.max) if layer.kind == "max" else (0.0, lax.add)
  k, s = layer.kernel, layer.stride
  return lax.reduce_window(x, init, op, (1, k, k, 1), (1, s, s, 1), [(0, 0), *pads, (0, 0)])


def _avg_counts(layer: Pool, hw):
  """float32[H_out, W_out, 1]: the real (unpadded) positions in each pooling window."""
  ones = jnp.ones((1, *hw, 1), jnp.float32)
  return _pool_sum_or_max(Pool("add", layer.kernel, layer.stride), ones, _pads(layer, hw))[0]


def dense_layer(variables, layer: Layer, x):
  """One layer on whole maps: float32[N, H, W, C] -> the next layer's input."""
  if isinstance(layer, Conv):
    return _conv_out(variables, layer, _conv(x, _kernel(variables, layer), layer.stride, layer.padding))
  if isinstance(layer, Pool):
    y = _pool_sum_or_max(layer, x, _pads(layer, x.shape[1:3]))
    return y if layer.kind == "max" else y / _avg_counts(layer, x.shape[1:3])
  if isinstance(layer, GlobalMean):
    return jnp.mean(x, axis=(1, 2))
  if isinstance(layer, Dense):
    p = variables["params"][layer.name]
    y = x.reshape(x.shape[0], -1) @ p["kernel"] + p["bias"]
    return jax.nn.relu(y) if layer.relu else y
  raise TypeError(f"unknown layer {layer!r}")


def logits(layers: Sequence[Layer], variables, images):
  """Dense forward pass from a description: uint8[N, H, W, 3] -> float32[N, C]."""
  x = cifar.preprocess(images)
  for layer in layers:
    x = dense_layer(variables, layer, x)
  return x


# --------------------------------------------------------------------------
# Windows.
# --------------------------------------------------------------------------


def _window_plan(layer, in_hw, patch_hw):
  """Static sizes of a window layer: (pads, out_hw, window_hw (outputs), input_hw (inputs))."""
  k, s = layer.window, layer.stride
  if s > k:
    raise NotImplementedError(f"incremental inference needs stride <= kernel, got {layer}")
  pads = _pads(layer, in_hw)
  out_hw = tuple((n + lo + hi - k) // s + 1 for n, (lo, hi) in zip(in_hw, pads))
  for n, (lo, hi), o in zip(in_hw, pads, out_hw):
    if lo + n > (o - 1) * s + k:  # a real row no output reads: patches could stick out of windows
      raise NotImplementedError(f"incremental inference needs every input row read, not so for {layer} on {in_hw}")
  win = tuple(min(-(-(p + k - 1) // s), o) for p, o in zip(patch_hw, out_hw))
  inp = tuple((w - 1) * s + k for w in win)
  return pads, out_hw, win, inp


def _paste(canvas, values, pos, margin):
  """Writes patches [k, h, w, C] at positions pos int[k, 2] (in ``canvas``
  coordinates minus ``margin``) into canvas [H, W, C], in order."""
  for j in range(values.shape[0]):
    canvas = lax.dynamic_update_slice(canvas, values[j], (pos[j, 0] + margin[0], pos[j, 1] + margin[1], 0))
  return canvas


def _window_layer(variables, layer, clean, values, pos):
  """One window layer for every candidate.

  Args:
    clean: float32[B, H, W, C] the clean input map of the layer.
    values: float32[B, P, k, h, w, C] each candidate's patches of that map.
    pos: int32[B, P, k, 2] the patches' (row, column) in the map.
  Returns:
    (values, pos) of the layer's output map.
  """
  b, p, k, ph, pw, c = values.shape
  in_hw = clean.shape[1:3]
  pads, out_hw, win, inp = _window_plan(layer, in_hw, (ph, pw))
  kk, s = layer.window, layer.stride
  lo = jnp.asarray([pads[0][0], pads[1][0]], jnp.int32)
  o0 = jnp.clip(-((kk - 1 - (pos + lo)) // s), 0, jnp.asarray(out_hw) - jnp.asarray(win))  # [B, P, k, 2]
  start = o0 * s  # the windows' first rows/columns in padded coordinates
  # k > 1: a margin of one patch on each side, so that another pixel's patch can be
  # written at its position relative to this window, clipped into the margin when
  # the two do not overlap; k == 1: the own patch always lies inside its window.
  margin = (ph, pw) if k > 1 else (0, 0)
  fill = -jnp.inf if isinstance(layer, Pool) and layer.kind == "max" else 0.0
  padded = jnp.pad(clean, [(0, 0), (pads[0][0] + margin[0], pads[0][1] + margin[0]),
                           (pads[1][0] + margin[1], pads[1][1] + margin[1]), (0, 0)], constant_values=fill)
  ext = (inp[0] + 2 * margin[0], inp[1] + 2 * margin[1])

  def one(img, vals, q, a):
    # img [Hp, Wp, C]; vals [k, h, w, C]; q [k, 2] patch starts, a [k, 2] window starts (padded coords)
    def window(ai):
      w = lax.dynamic_slice(img, (ai[0], ai[1], 0), (*ext, c))
      rel = q - ai
      if k > 1:
        rel = jnp.clip(rel, -jnp.asarray([ph, pw]), jnp.asarray(inp))
      w = _paste(w, vals, rel, margin)
      return w[margin[0]:margin[0] + inp[0], margin[1]:margin[1] + inp[1]]
    return jax.vmap(window)(a)

  windows = jax.vmap(jax.vmap(one, (None, 0, 0, 0)))(padded, values, pos + lo, start)  # [B, P, k, ih, iw, C]
  x = windows.reshape(b * p * k, *inp, c)
  if isinstance(layer, Conv):
    kernel = _kernel(variables, layer)
    y = (lax.conv_general_dilated(x, kernel, (s, s), "VALID", dimension_numbers=_DN)
         if compiler.xla_convolutions_win() else patchconv.conv_patches(x, kernel, (s, s), "VALID"))
    y = _conv_out(variables, layer, y)
  else:
    y = _pool_sum_or_max(layer, x, [(0, 0), (0, 0)])
    if layer.kind == "avg":
      counts = _avg_counts(layer, in_hw)
      cnt = jax.vmap(lambda o: lax.dynamic_slice(counts, (o[0], o[1], 0), (*win, 1)))(o0.reshape(-1, 2))
      y = y / cnt
  return y.reshape(b, p, k, *win, y.shape[-1]), o0


def _pointwise_applies(layer) -> bool:
  """Whether :func:`_pointwise_layer` computes this layer: a 1x1 stride-1 convolution."""
  return isinstance(layer, Conv) and layer.kernel == 1 and layer.stride == 1


def _pointwise_layer(variables, layer: Conv, clean, values, pos):
  """A 1x1 stride-1 convolution on the patches themselves.

  Each patch holds the candidate's map on its window exactly (all ``k``
  patches were written into every window the layer before computed), and a
  1x1 convolution maps each position alone, so the output patches are the
  convolution of the input patches, at the same positions: no window is cut
  from the clean map and no patch pasted into it. For ``k > 1`` that copy was
  most of the window route's cost (NiN's 1x1 layers at 32x32, 5 pixels: a
  15x15 window per 5x5 patch). Same arguments and result as
  :func:`_window_layer` (``clean`` is not read).
  """
  kernel = _kernel(variables, layer)                                 # [1, 1, C, F]
  y = values @ kernel.reshape(kernel.shape[2:])                      # [B, P, k, h, w, F]
  return _conv_out(variables, layer, y), pos


def _delta_applies(layer, values) -> bool:
  """Whether :func:`_conv_delta_layer` computes this layer: a stride-1
  convolution with a kernel larger than 1x1, one patch per candidate (k = 1;
  generalised to k patches it ran AllConv's 3-pixel attack at 0.96x of the
  window route: README, Speed)."""
  return isinstance(layer, Conv) and layer.stride == 1 and layer.kernel > 1 and values.shape[2] == 1


def _conv_delta_layer(variables, layer: Conv, clean, values, pos):
  """A stride-1 convolution for one-patch candidates, by linearity: the
  clean map's pre-activation plus the convolution of the patch's change.

  A convolution is linear, so on a candidate that differs from the clean map
  by ``delta`` (an ``h x w`` patch), its pre-activation is the clean one plus
  the convolution of ``delta`` alone, which is non-zero on ``h + K - 1``
  rows: one product ``delta[h w, C] @ kernel[C, K K F]`` and ``K K``
  shifted additions, against ``(h + K - 1)^2 K^2 C F`` multiply-adds for the
  window's convolution (AllConv's 8x8 window at 16x16: 36 / 64 of them).
  Then the batch norm and ReLU, as :func:`_window_layer`; same arguments
  and result.
  """
  b, p, _, ph, pw, c = values.shape
  kk = layer.kernel
  pads, out_hw, win, _ = _window_plan(layer, clean.shape[1:3], (ph, pw))
  lo = jnp.asarray([pads[0][0], pads[1][0]], jnp.int32)
  o0 = jnp.clip(pos + lo - (kk - 1), 0, jnp.asarray(out_hw) - jnp.asarray(win))  # [B, P, 1, 2]
  kernel = _kernel(variables, layer)                                              # [K, K, C, F]
  f = kernel.shape[-1]
  pre = _conv(clean, kernel, 1, layer.padding)                                    # [B, Ho, Wo, F]

  def clean_patch(img, q):  # img [H, W, C]; q [P, 2] -> [P, h, w, C]
    return jax.vmap(lambda qi: lax.dynamic_slice(img, (qi[0], qi[1], 0), (ph, pw, c)))(q)

  delta = values[:, :, 0] - jax.vmap(clean_patch)(clean, pos[:, :, 0])           # [B, P, h, w, C]
  taps = (delta.reshape(-1, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, kk * kk * f))
  taps = taps.reshape(b, p, ph, pw, kk, kk, f)
  # Output (row pos + lo - K + 1 + r) receives tap t of delta row a at r = a + K - 1 - t.
  canvas = sum(jnp.pad(taps[:, :, :, :, t, u], [(0, 0), (0, 0), (kk - 1 - t, t), (kk - 1 - u, u), (0, 0)])
               for t in range(kk) for u in range(kk))                             # [B, P, h+K-1, w+K-1, F]
  # The window [o0, o0 + win) in canvas coordinates; canvas rows outside the map are dropped.
  margin = max(win[0], win[1], ph + kk, pw + kk)
  canvas = jnp.pad(canvas, [(0, 0), (0, 0), (margin, margin), (margin, margin), (0, 0)])
  offset = o0[:, :, 0] - (pos[:, :, 0] + lo - (kk - 1)) + margin                   # [B, P, 2]

  def window(img_pre, can, off, o):
    return (lax.dynamic_slice(img_pre, (o[0], o[1], 0), (*win, f))
            + lax.dynamic_slice(can, (off[0], off[1], 0), (*win, f)))

  y = jax.vmap(jax.vmap(window, (None, 0, 0, 0)))(pre, canvas, offset, o0[:, :, 0])  # [B, P, wh, ww, F]
  return _conv_out(variables, layer, y)[:, :, None], o0


@contextlib.contextmanager
def without_shortcuts(*names: str):
  """Within this block, functions traced do without the named shortcuts
  (``ALL_SHORTCUTS``; a window layer they would have computed is computed by
  :func:`_window_layer`): the "before" of a before/after measurement
  (``experiments.benchmark``). Results are equal to float tolerance."""
  unknown = set(names) - ALL_SHORTCUTS
  if unknown:
    raise ValueError(f"unknown shortcut(s) {sorted(unknown)}; valid: {sorted(ALL_SHORTCUTS)}")
  global SHORTCUTS
  saved, SHORTCUTS = SHORTCUTS, SHORTCUTS - set(names)
  try:
    yield
  finally:
    SHORTCUTS = saved


def windows_only():
  """:func:`without_shortcuts` of every shortcut: :func:`_window_layer` for
  every window layer."""
  return without_shortcuts(*ALL_SHORTCUTS)


def _window_fn(layer, values):
  """The function that computes a window layer for these patches."""
  if "pointwise" in SHORTCUTS and _pointwise_applies(layer):
    return _pointwise_layer
  if "delta" in SHORTCUTS and _delta_applies(layer, values):
    return _conv_delta_layer
  return _window_layer


def _densify(clean, values, pos):
  """float32[B * P, H, W, C]: each candidate's whole map (clean map with its patches)."""
  b, p = values.shape[:2]
  full = jax.vmap(jax.vmap(_paste, (None, 0, 0, None)), (0, 0, 0, None))(clean, values, pos, (0, 0))
  return full.reshape(b * p, *full.shape[2:])


def default_dense_fraction(pixels: int) -> float:
  """The share of a layer's output map at which ``pixels`` windows give way
  to the dense layer: ``DENSE_FRACTION`` for one pixel, for more
  ``MULTI_PIXEL_DENSE_FRACTION`` (while the "early_dense" shortcut is on)."""
  return MULTI_PIXEL_DENSE_FRACTION if pixels > 1 and "early_dense" in SHORTCUTS else DENSE_FRACTION


def _windows_fit(pixels: int, win, out_hw, fraction: float | None) -> bool:
  """Whether ``pixels`` windows of ``win`` cover less than ``fraction`` (default
  :func:`default_dense_fraction`) of an ``out_hw`` map: the layer computes windows."""
  fraction = default_dense_fraction(pixels) if fraction is None else fraction
  return pixels * win[0] * win[1] < fraction * out_hw[0] * out_hw[1]


def window_sizes(layers: Sequence[Layer], pixels: int = 1, input_hw=(32, 32),
                 dense_fraction: float | None = None) -> list:
  """Per layer: the (h, w) of each pixel's window, or 'dense' (for docs and tests)."""
  hw, patch, out = tuple(input_hw), (1, 1), []
  dense = False
  for layer in layers:
    if not dense and isinstance(layer, (Conv, Pool)):
      _, out_hw, win, _ = _window_plan(layer, hw, patch)
      dense = not _windows_fit(pixels, win, out_hw, dense_fraction)
      if not dense:
        out.append(win)
        hw, patch = out_hw, win
        continue
    dense = True
    out.append("dense")
  return out


def compiler_kind(layers: Sequence[Layer], pixels: int = 1, input_hw=(32, 32)) -> str:
  """The kind of compiler options (``compiler.KINDS``) for this network's
  incremental path with ``pixels`` changed pixels: ``"incremental_wide_delta"``
  where one-pixel candidates take :func:`_conv_delta_layer` through a
  convolution wider than 3x3 (NiN's 5x5; YNNPACK's products measured slower
  there), else ``"incremental"``."""
  sizes = window_sizes(layers, pixels, input_hw)
  wide = pixels == 1 and any(isinstance(layer, Conv) and layer.stride == 1 and layer.kernel > 3 and size != "dense"
                             for layer, size in zip(layers, sizes))
  return "incremental_wide_delta" if wide else "incremental"


def logits_incremental(layers: Sequence[Layer], variables, clean_images, perturbations,
                       dense_fraction: float | None = None):
  """Logits of every perturbed image, recomputing only the windows its changed pixels reach.

  Args:
    layers: the network's description (``describe``).
    clean_images: uint8[B, H, W, 3].
    perturbations: int[B, P, k, 5] valid (x, y, r, g, b) tuples (``perturb.to_perturbations``).
    dense_fraction: the share of a layer's map at which the windows give way
      to the dense layer (default :func:`default_dense_fraction` of ``k``); 0
      computes everything dense.
  Returns:
    float32[B, P, C], equal to the dense model's logits on
    ``perturb.apply(clean_images[:, None], perturbations)`` to float tolerance.
  """
  pixels = jnp.asarray(perturbations).astype(jnp.int32)
  b, p, k = pixels.shape[:3]
  clean = cifar.preprocess(clean_images)                                 # [B, H, W, 3]
  values = cifar.preprocess(pixels[..., 2:5])[:, :, :, None, None, :]    # [B, P, k, 1, 1, 3]
  pos = jnp.stack([pixels[..., 1], pixels[..., 0]], axis=-1)             # (row, column)
  x = None  # [B * P, ...] once dense
  for layer in layers:
    if x is None and isinstance(layer, (Conv, Pool)):
      _, out_hw, win, _ = _window_plan(layer, clean.shape[1:3], values.shape[3:5])
      if _windows_fit(k, win, out_hw, dense_fraction):
        values, pos = _window_fn(layer, values)(variables, layer, clean, values, pos)
        clean = dense_layer(variables, layer, clean)
        continue
    if x is None:
      x = _densify(clean, values, pos)
    x = dense_layer(variables, layer, x)
  return x.astype(jnp.float32).reshape(b, p, -1)


def apply_incremental(layers: Sequence[Layer], variables, clean_images, perturbations,
                      dense_fraction: float | None = None):
  """float32[B, P, C] softmax probabilities of ``logits_incremental``."""
  return jax.nn.softmax(logits_incremental(layers, variables, clean_images, perturbations, dense_fraction), axis=-1)


# Deprecated names (until the next release).
logits_pixels = logits_incremental
apply_pixels = apply_incremental
