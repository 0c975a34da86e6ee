r"""Sound one-pixel certificates: branch and bound over colour boxes with
back-substituted linear bounds.

For one image and one position (x = column, y = row), the only input that
varies is the pixel's colour ``c`` in a box ``[lo, hi]`` of
``{0, ..., 255}^3``: the input is 3-D. Every neuron the pixel does not reach
keeps its clean value, so the network restricted to the pixel's receptive
*cone* (the windows of :mod:`onepixel_jax.models.incremental`) is a small
network of 3 inputs:

    z_0 = A c + b_0,   z_k = W_k relu(z_{k-1}) + b_k   (k = 1 .. L-1; no ReLU
    where the layer has none), logits = z_{L-1},

with ``A: float[n_0, 3]`` (the input normalisation folded in), ``W_k`` the
cone's block of layer ``k`` (batch norm in eval mode folded into the
convolution, global average pooling and dense layers as matrices), and
``b_k`` the clean contribution of everything outside the cone.

**Bounds** (DeepPoly, Singh et al. 2019; CROWN, Zhang et al. 2018). Each
ReLU ``relu(z)`` with pre-activation bounds ``l < 0 < u`` is relaxed between
a lower line ``alpha z`` (``alpha = 1`` if ``u >= -l`` else 0, the
area-minimising choice) and the upper line ``u (z - l) / (u - l)``. A linear
function of layer ``k``'s neurons is *back-substituted* layer by layer down
to the three colour variables (at each ReLU the lower or the upper line,
by the sign of its coefficient), so every bound is 4 numbers (3 coefficients
and a constant), minimised over the box in closed form. Every layer's bounds
are computed this way from the bounds of the layers below, then intersected
with interval bounds (IBP) propagated from them, so they are never looser
than IBP. The quantities bounded are the margins
``logit[label] - logit[j]`` (non-targeted: the box is certified when every
margin's lower bound is positive) or ``logit[j] - logit[target]``
(targeted: certified when *some* competitor ``j`` provably beats the target
on the whole box; branching makes this disjunction complete).

**Branch and bound.** Every position starts with the whole box. A box whose
bound certifies it is done; otherwise two candidate colours (the box's centre
and the corner minimising the worst margin's linear lower bound) are
evaluated on the cone, and a candidate that may succeed is confirmed with the
model's own ``predict`` on the perturbed image (a position is *vulnerable*
only on a confirmed colour). Undecided boxes are split in two along their
widest channel (integer halves); a single colour is decided exactly by
evaluation. A position is *robust* when all its boxes are certified or
decided, *unknown* when the image's budget (boxes bounded, seconds) runs out
first.

**Floating point.** Bounds are computed in float32, on a network whose batch
norm is folded, so they can differ from exact arithmetic (and from the
model's float32 evaluation) by rounding. A bound certifies only when it
exceeds ``tol = EPS_REL * (1 + max |clean logit|)``. ``EPS_REL = 1e-4`` is
about ``n u`` for float32's unit round-off ``u = 6e-8`` and dot products of
``n ~ 2,000`` terms (ConvSmall's widest: 2,048), the worst-case relative
error of a float32 sum (Higham 2002, Sec. 3.1), taken relative to the logits'
scale; the tests measure the actual discrepancy between point-box bounds and
the model's logits far below it (ConvSmall: at most 1.1% of ``tol`` over
6,144 single colours). It does not transfer to deeper networks: on AllConv
the float32 back-substitution of a single colour is off by 0.015 (float64:
1e-10), 25 times ``tol``; certifying such a network needs float64 bounds
(``Network.params`` cast to float64 under ``jax_enable_x64``) or a rounding-error
bound. Candidates are judged
with the same margin in the other direction (a candidate within ``tol`` of
succeeding goes to ``predict``), so a colour the cone arithmetic misjudges is
never lost. This is a careful float32 certificate, not one in outward-rounded
interval arithmetic.

Networks: convolutions (with or without batch norm), dense layers, global
average pooling, ReLU (ConvSmall, AllConv). Max pooling (NiN, VGG16) has no
relaxation here: :func:`network` raises. The cone matrices are dense, which
suits ConvSmall (cone 64 -> 288 -> 100 -> 10 neurons, ~2e7 multiply-adds per
box);
AllConv's cone (864 -> 2,400 -> ... -> 12,288 -> ...; ~1e13 per box) is far
beyond 2 CPU cores (see :func:`cone_sizes`, :func:`box_macs`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax.models import cifar, incremental

EPS_REL = 1e-4  # a bound must exceed EPS_REL * (1 + max |clean logit|) to certify (see the module docstring)

UNKNOWN, ROBUST, VULNERABLE = 0, 1, 2
STATUS_NAMES = ("unknown", "robust", "vulnerable")


# --------------------------------------------------------------------------
# The network as affine layers (+ ReLU) and the pixel's cone through it.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layer:
  """One affine layer (static description), then ReLU if ``relu``.

  ``kind``: "conv" (kernel float[K, K, Cin, Cout], bias float[Cout]),
  "dense" (kernel float[Nin, Nout] on the flattened input, bias float[Nout])
  or "mean" (global average pooling; no parameters). ``in_shape`` / ``out_shape``:
  (H, W, C) maps or (N,) vectors. ``pads``: the conv's ((lo, hi), (lo, hi)).
  ``window``: (h, w) of the output window a pixel's cone occupies (convs; the
  windows of :mod:`incremental`), () where the output is a vector (all of it).
  """
  kind: str
  in_shape: tuple
  out_shape: tuple
  relu: bool
  kernel: int = 0
  stride: int = 1
  pads: tuple = ((0, 0), (0, 0))
  window: tuple = ()

  @property
  def size(self) -> int:
    """Neurons of the output cone."""
    if self.window:
      return self.window[0] * self.window[1] * self.out_shape[-1]
    return int(np.prod(self.out_shape))


@dataclasses.dataclass(frozen=True)
class Network:
  """A network for certificates: static ``layers`` and their ``params``
  (``((kernel, bias), ...)`` float32, batch norm folded; empty arrays for "mean")."""
  layers: tuple[Layer, ...]
  params: tuple
  input_hw: tuple[int, int]

  @property
  def num_classes(self) -> int:
    return int(self.layers[-1].out_shape[-1])


def network(layers: Sequence, variables, input_hw: tuple[int, int] = (32, 32)) -> Network:
  """The certifier's view of a network given by an :mod:`incremental` description.

  Args:
    layers: ``incremental.describe(module)`` or a hand-made tuple of
      ``incremental.Conv`` / ``Dense`` / ``GlobalMean``.
    variables: the module's ``{'params', 'batch_stats'}``.
    input_hw: (H, W) of the images.
  Raises:
    ValueError: a layer with no relaxation here (pooling).
  """
  pools = [layer for layer in layers
           if not isinstance(layer, (incremental.Conv, incremental.Dense, incremental.GlobalMean))]
  if pools:
    raise ValueError(f"certify: no relaxation for {pools[0]} (max pooling); certify networks without pools "
                     "(convsmall, allconv)")
  out, params = [], []
  shape, patch = (*input_hw, 3), (1, 1)
  for layer in layers:
    if isinstance(layer, incremental.Conv):
      p = variables["params"][layer.name]
      if layer.bn:  # eval-mode batch norm folded into the kernel, in flax's order of operations
        s = variables["batch_stats"][layer.name]["BatchNorm_0"]
        bn = p["BatchNorm_0"]
        mul = jax.lax.rsqrt(jnp.asarray(s["var"], jnp.float32) + incremental._BN_EPSILON) * bn["scale"]
        kernel = jnp.asarray(p["Conv_0"]["kernel"], jnp.float32) * mul
        bias = bn["bias"] - s["mean"] * mul
      else:
        kernel, bias = p["kernel"], p["bias"]
      if len(shape) != 3:
        raise ValueError(f"certify: a convolution after a flattening layer is not supported ({layer})")
      pads, out_hw, win, _ = incremental._window_plan(layer, shape[:2], patch)
      cout = kernel.shape[-1]
      out.append(Layer("conv", shape, (*out_hw, cout), layer.bn or layer.relu, layer.kernel, layer.stride,
                       tuple(tuple(int(v) for v in p_) for p_ in pads), tuple(win)))
      params.append((jnp.asarray(kernel, jnp.float32), jnp.asarray(bias, jnp.float32)))
      shape, patch = (*out_hw, cout), tuple(win)
    elif isinstance(layer, incremental.Dense):
      p = variables["params"][layer.name]
      n = p["kernel"].shape[-1]
      out.append(Layer("dense", shape, (n,), layer.relu))
      params.append((jnp.asarray(p["kernel"], jnp.float32), jnp.asarray(p["bias"], jnp.float32)))
      shape = (n,)
    elif isinstance(layer, incremental.GlobalMean):
      out.append(Layer("mean", shape, (shape[-1],), False))
      params.append((jnp.zeros((0,), jnp.float32), jnp.zeros((0,), jnp.float32)))
      shape = (shape[-1],)
  return Network(tuple(out), tuple(params), tuple(input_hw))


def from_model(model) -> Network:
  """:func:`network` of a loaded CIFAR-10 model (ConvSmall, AllConv)."""
  layers = incremental.describe(model.module)
  if layers is None:
    raise ValueError(f"certify: {model.name} has no layer description")
  return network(layers, model.variables, tuple(model.input_size))


def certifiable(model) -> str | None:
  """None if :func:`from_model` can relax ``model``, else the one-line reason
  (NiN and VGG16: max pooling)."""
  try:
    from_model(model)
  except ValueError as e:
    return str(e).splitlines()[0]
  return None


def cone_sizes(net: Network) -> list[int]:
  """Neurons of a pixel's cone per layer (the sizes of the matrices bounded)."""
  return [layer.size for layer in net.layers]


def box_macs(net: Network) -> int:
  """Multiply-adds of one box's bounds (back-substitution of every layer's
  two-sided bounds and of the margins), the certifier's unit of cost:
  ConvSmall ~2e7, AllConv ~1e13."""
  n = [3] + cone_sizes(net)  # n[k + 1]: layer k's cone
  chain = lambda k: sum(n[i + 1] * n[i] for i in range(k + 1))  # noqa: E731  one row from layer k to the colour
  rows = [2 * n[k + 1] for k in range(len(net.layers) - 1)] + [net.num_classes]
  return int(sum(r * chain(k) for k, r in enumerate(rows)))


def clean_activations(net: Network, image) -> tuple:
  """Pre-activations of every layer on the clean image: uint8[H, W, 3] ->
  (float32[H1, W1, C1] or float32[N1], ...), the last the logits."""
  x = cifar.preprocess(jnp.asarray(image)[None])[0].astype(net.params[0][0].dtype)  # float64 params: float64
  acts = []
  for layer, (kernel, bias) in zip(net.layers, net.params):
    if layer.kind == "conv":
      z = jax.lax.conv_general_dilated(x[None], kernel, (layer.stride,) * 2, layer.pads,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))[0] + bias
    elif layer.kind == "dense":
      z = x.reshape(-1) @ kernel + bias
    else:
      z = jnp.mean(x, axis=(0, 1))
    acts.append(z)
    x = jax.nn.relu(z) if layer.relu else z
  return tuple(acts)


def _conv_block(layer: Layer, kernel, q, in_win, o0):
  """float[ho * wo * Cout, hi * wi * Cin]: the conv's weights from the input
  window (start ``q``, size ``in_win``) to the output window (start ``o0``)."""
  k, s = layer.kernel, layer.stride
  (ho, wo), (hi, wi) = layer.window, in_win
  ky = (q[0] + jnp.arange(hi))[None, :] - ((o0[0] + jnp.arange(ho)) * s - layer.pads[0][0])[:, None]  # [ho, hi]
  kx = (q[1] + jnp.arange(wi))[None, :] - ((o0[1] + jnp.arange(wo)) * s - layer.pads[1][0])[:, None]  # [wo, wi]
  g = kernel[jnp.clip(ky, 0, k - 1)[:, None, :, None], jnp.clip(kx, 0, k - 1)[None, :, None, :]]
  valid = (((ky >= 0) & (ky < k))[:, None, :, None] & ((kx >= 0) & (kx < k))[None, :, None, :])
  g = g * valid[..., None, None]                                  # [ho, wo, hi, wi, Cin, Cout]
  return g.transpose(0, 1, 5, 2, 3, 4).reshape(ho * wo * kernel.shape[-1], hi * wi * kernel.shape[-2])


def _window_start(layer: Layer, q):
  """int32[2]: first output row/column of the conv's window for an input window starting at ``q``."""
  lo = jnp.asarray([layer.pads[0][0], layer.pads[1][0]], jnp.int32)
  out_hw = jnp.asarray(layer.out_shape[:2], jnp.int32)
  return jnp.clip(-((layer.kernel - 1 - (q + lo)) // layer.stride), 0, out_hw - jnp.asarray(layer.window))


def cone(net_layers: tuple[Layer, ...], params, acts, image, pos):
  """The network restricted to the cone of the pixel at ``pos`` (int[2]: row, column).

  Args:
    acts: :func:`clean_activations` of ``image`` (uint8[H, W, 3]).
  Returns:
    ``(Ws, bs)``: ``Ws[0]`` float32[n_0, 3] (raw colour to layer 0's cone),
    ``Ws[k]`` float32[n_k, n_{k-1}], ``bs[k]`` float32[n_k], such that the
    cone's pre-activations with colour ``c`` at ``pos`` are
    ``z_0 = Ws[0] c + bs[0]``, ``z_k = Ws[k] relu(z_{k-1}) + bs[k]``.
  """
  pos = jnp.asarray(pos, jnp.int32)
  scale = 1.0 / (255.0 * jnp.asarray(cifar.CIFAR10_STD, jnp.float32))
  c_clean = jnp.asarray(image)[pos[0], pos[1]].astype(jnp.float32)
  q, in_win = pos, (1, 1)
  prev_post = None  # the previous layer's clean post-activations on its cone
  Ws, bs = [], []
  for i, (layer, (kernel, bias)) in enumerate(zip(net_layers, params)):
    if layer.kind == "conv":
      o0 = _window_start(layer, q)
      W = _conv_block(layer, kernel, q, in_win, o0)
      z = jax.lax.dynamic_slice(acts[i], (o0[0], o0[1], 0), (*layer.window, layer.out_shape[-1])).reshape(-1)
      q, in_win = o0, layer.window
    elif layer.kind == "dense":
      if len(layer.in_shape) == 3:
        h, w, c = layer.in_shape
        r = (q[0] + jnp.arange(in_win[0]))[:, None, None]
        col = (q[1] + jnp.arange(in_win[1]))[None, :, None]
        idx = ((r * w + col) * c + jnp.arange(c)[None, None, :]).reshape(-1)
        W = kernel[idx].T
      else:
        W = kernel.T
      z = acts[i]
    else:  # global mean of the input window's channels
      h, w, c = layer.in_shape
      W = jnp.tile(jnp.eye(c, dtype=jnp.float32), (1, in_win[0] * in_win[1])) / (h * w)
      z = acts[i]
    if i == 0:
      W = W * scale[None, :]
      b = z - W @ c_clean
    else:
      b = z - W @ prev_post
    Ws.append(W)
    bs.append(b)
    prev_post = jax.nn.relu(z) if layer.relu else z
  return tuple(Ws), tuple(bs)


def forward(net_layers: tuple[Layer, ...], cone_, colour) -> list:
  """The cone's pre-activations at colour float[3] (the last: the logits)."""
  Ws, bs = cone_
  z = Ws[0] @ colour + bs[0]
  zs = [z]
  for k in range(1, len(Ws)):
    z = Ws[k] @ (jax.nn.relu(z) if net_layers[k - 1].relu else z) + bs[k]
    zs.append(z)
  return zs


# --------------------------------------------------------------------------
# Bounds over a colour box.
# --------------------------------------------------------------------------


def _concretise(coef, const, mid, rad):
  """Lower bound of ``coef @ c + const`` over the box (centre mid, radius rad)."""
  return coef @ mid - jnp.abs(coef) @ rad + const


def _post(l, u, relu):
  return (jax.nn.relu(l), jax.nn.relu(u)) if relu else (l, u)


def _ibp(W, b, pl, pu):
  wp, wn = jnp.maximum(W, 0), jnp.minimum(W, 0)
  return wp @ pl + wn @ pu + b, wp @ pu + wn @ pl + b


def interval_bounds(net_layers: tuple[Layer, ...], cone_, lo, hi) -> list:
  """Interval bound propagation (IBP) of every layer's pre-activations over
  the box: [(float32[n_k] lower, upper), ...] (the comparison for
  :func:`linear_bounds`)."""
  Ws, bs = cone_
  mid, rad = (lo + hi) / 2, (hi - lo) / 2
  l = _concretise(Ws[0], bs[0], mid, rad)
  out = [(l, -_concretise(-Ws[0], -bs[0], mid, rad))]
  for k in range(1, len(Ws)):
    out.append(_ibp(Ws[k], bs[k], *_post(*out[-1], net_layers[k - 1].relu)))
  return out


def _relaxation(l, u, relu):
  """(alpha, s, t): relu(z) >= alpha z and relu(z) <= s z + t on [l, u]."""
  if not relu:
    one = jnp.ones_like(l)
    return one, one, jnp.zeros_like(l)
  active, inactive = l >= 0, u <= 0
  unstable = ~active & ~inactive
  s = jnp.where(unstable, u / jnp.where(unstable, u - l, 1.0), active.astype(l.dtype))
  t = jnp.where(unstable, -s * l, 0.0)
  alpha = jnp.where(unstable, (u >= -l).astype(l.dtype), active.astype(l.dtype))
  return alpha, s, t


def _relax_rows(lam, const, relax):
  """Rows on post-activations -> rows on pre-activations (lower bounds)."""
  alpha, s, t = relax
  pos = lam >= 0
  const = const + jnp.sum(jnp.where(pos, 0.0, lam * t), axis=-1)
  return jnp.where(pos, lam * alpha, lam * s), const


def _backsub(cone_, relax, lam, const, k):
  """Back-substitutes rows ``lam @ z_k + const`` (on layer k's
  pre-activations) to the colour: (coef float[M, 3], const float[M]) with
  ``lam @ z_k + const >= coef @ c + const'`` on the box."""
  Ws, bs = cone_
  for i in range(k, -1, -1):
    const = const + lam @ bs[i]
    lam = lam @ Ws[i]
    if i > 0:
      lam, const = _relax_rows(lam, const, relax[i - 1])
  return lam, const


def linear_bounds(net_layers: tuple[Layer, ...], cone_, lo, hi, backsub_limit: float | None = None,
                  _keep_relax: bool = False):
  """Back-substituted bounds of every layer's pre-activations over the box
  ``[lo, hi]`` (float[3] raw colours): [(float32[n_k] lower, upper), ...],
  each intersected with the interval bounds propagated from the layer below
  (so never looser than :func:`interval_bounds`).

  ``backsub_limit``: layers whose back-substitution would cost more
  multiply-adds than this get interval bounds only (from the layer below's
  bounds; CROWN-IBP-like above that depth), the measurable compromise for
  networks as deep and wide as AllConv. None: every layer back-substituted.
  """
  Ws, bs = cone_
  mid, rad = (lo + hi) / 2, (hi - lo) / 2
  out = [(_concretise(Ws[0], bs[0], mid, rad), -_concretise(-Ws[0], -bs[0], mid, rad))]
  relax = [_relaxation(*out[0], net_layers[0].relu)]
  for k in range(1, len(Ws)):
    n = Ws[k].shape[0]
    il, iu = _ibp(Ws[k], bs[k], *_post(*out[-1], net_layers[k - 1].relu))
    if backsub_limit is not None and 2 * n * sum(W.size for W in Ws[:k]) > backsub_limit:
      out.append((il, iu))
      relax.append(_relaxation(il, iu, net_layers[k].relu))
      continue
    lam, const = _relax_rows(jnp.concatenate([Ws[k], -Ws[k]]), jnp.concatenate([bs[k], -bs[k]]), relax[k - 1])
    coef, const = _backsub(cone_, relax, lam, const, k - 1)
    low = _concretise(coef, const, mid, rad)
    l, u = jnp.maximum(low[:n], il), jnp.minimum(-low[n:], iu)
    out.append((l, u))
    relax.append(_relaxation(l, u, net_layers[k].relu))
  return (out, relax) if _keep_relax else out


def margin_rows(label, target, num_classes: int):
  """(rows float32[C, C], valid bool[C]): row j is ``e_label - e_j``
  (non-targeted, ``target < 0``) or ``e_j - e_target`` (targeted), valid for
  j other than the label / target. Non-targeted robustness: every valid
  row's value positive; targeted: some valid row's value positive."""
  eye = jnp.eye(num_classes, dtype=jnp.float32)
  targeted = target >= 0
  rows = jnp.where(targeted, eye - eye[jnp.maximum(target, 0)][None, :], eye[label][None, :] - eye)
  valid = jnp.arange(num_classes) != jnp.where(targeted, target, label)
  return rows, valid


def margin_bounds(net_layers: tuple[Layer, ...], cone_, lo, hi, rows, backsub_limit: float | None = None):
  """Lower bounds of ``rows @ logits`` over the box, with the linear
  functions of the colour that bound them: (lower float32[M], coef float32[M, 3]).
  The margins are always back-substituted; ``backsub_limit``: as :func:`linear_bounds`."""
  hidden, relax = linear_bounds(net_layers[:-1], (cone_[0][:-1], cone_[1][:-1]), lo, hi, backsub_limit,
                                _keep_relax=True) if len(net_layers) > 1 else ([], [])
  Ws, bs = cone_
  mid, rad = (lo + hi) / 2, (hi - lo) / 2
  k = len(Ws) - 1
  coef, const = _backsub(cone_, relax, rows, jnp.zeros(rows.shape[0], jnp.float32), k)
  low = _concretise(coef, const, mid, rad)
  if k > 0:  # intersect with interval bounds
    lam = rows @ Ws[k]
    pl, pu = _post(*hidden[-1], net_layers[k - 1].relu)
    low = jnp.maximum(low, jnp.maximum(lam, 0) @ pl + jnp.minimum(lam, 0) @ pu + rows @ bs[k])
  return low, coef


@functools.partial(jax.jit, static_argnames=("net_layers",))
def bound_boxes(net_layers: tuple[Layer, ...], params, acts, image, label, target, tol, pos, lo, hi):
  """Bounds and candidates for a batch of boxes of one image.

  Args:
    params, acts, image: the network's params, :func:`clean_activations` of
      ``image`` uint8[H, W, 3].
    label, target: ints (target -1: non-targeted); tol: the certification margin.
    pos: int32[B, 2] (row, column); lo, hi: float32[B, 3] the colour boxes.
  Returns:
    dict of ``safe`` bool[B] (certified), ``lower`` float32[B, C] margin
    lower bounds (+inf where not a margin), ``candidates`` float32[B, 2, 3]
    (centre rounded down, the corner minimising the worst margin's linear
    bound) and ``suspect`` bool[B, 2] (may succeed by the cone's arithmetic,
    within ``tol``: to confirm with the model).
  """
  c = net_layers[-1].out_shape[-1]
  rows, valid = margin_rows(label, target, c)
  targeted = target >= 0

  def one(p, l, h):
    cone_ = cone(net_layers, params, acts, image, p)
    low, coef = margin_bounds(net_layers, cone_, l, h, rows)
    low = jnp.where(valid, low, jnp.inf)
    safe = jnp.where(targeted, jnp.max(jnp.where(valid, low, -jnp.inf)) > tol, jnp.min(low) > tol)
    worst = jnp.where(targeted, jnp.argmax(jnp.where(valid, low, -jnp.inf)), jnp.argmin(low))
    corner = jnp.where(coef[worst] > 0, l, h)
    cands = jnp.stack([jnp.floor((l + h) / 2), corner])

    def suspect(colour):
      m = rows @ forward(net_layers, cone_, colour)[-1]
      return jnp.where(targeted, jnp.max(jnp.where(valid, m, -jnp.inf)) < tol,
                       jnp.min(jnp.where(valid, m, jnp.inf)) < tol)

    return safe, low, cands, jax.vmap(suspect)(cands)

  safe, low, cands, sus = jax.vmap(one)(pos, lo, hi)
  return {"safe": safe, "lower": low, "candidates": cands, "suspect": sus}


# --------------------------------------------------------------------------
# Branch and bound.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Certificate:
  """What branch and bound found for one image.

  Attributes:
    status: int8[H, W] per position: ROBUST (1: every colour of the box
      certified or evaluated), VULNERABLE (2: a colour confirmed by
      ``predict``), UNKNOWN (0: budget exhausted).
    colour: int32[H, W, 3] the confirmed colour at vulnerable positions, -1 elsewhere.
    boxes: int32[H, W] boxes bounded per position.
    seconds: wall time; exhausted: whether the budget ran out.
  """
  status: np.ndarray
  colour: np.ndarray
  boxes: np.ndarray
  seconds: float
  exhausted: bool

  @property
  def counts(self) -> dict:
    return {name: int((self.status == i).sum()) for i, name in enumerate(STATUS_NAMES)}

  @property
  def verdict(self) -> str:
    """"vulnerable" if a pixel is known to succeed, "robust" if every position is certified, else "unknown"."""
    if (self.status == VULNERABLE).any():
      return "vulnerable"
    return "robust" if (self.status == ROBUST).all() else "unknown"

  @property
  def pixel(self) -> list | None:
    """[x, y, r, g, b] of the first vulnerable position (row-major), None if none."""
    ys, xs = np.nonzero(self.status == VULNERABLE)
    if not len(ys):
      return None
    return [int(xs[0]), int(ys[0]), *map(int, self.colour[ys[0], xs[0]])]


def _succeeds(predict, image, label, target, pos, colours) -> np.ndarray:
  """bool[n]: the model classifies the image with colour[i] at pos[i] (row,
  column) as other than ``label`` (targeted: as ``target``)."""
  n = len(pos)
  if n == 0:
    return np.zeros(0, bool)
  size = 1 << max(4, int(np.ceil(np.log2(n))))  # few distinct shapes: few compilations
  imgs = np.repeat(np.asarray(image)[None], size, axis=0)
  imgs[np.arange(n), pos[:, 0], pos[:, 1]] = colours
  pred = np.asarray(predict(imgs)).argmax(-1)[:n]
  return pred == target if target >= 0 else pred != label


def certify(net: Network | None, predict: Callable, image, label: int, target: int = -1, box=None, seeds=None,
            max_boxes: int = 1_000_000, max_seconds: float | None = None, batch: int = 512) -> Certificate:
  """Branch and bound over colour boxes at every position of one image.

  Args:
    net: :func:`network` / :func:`from_model`; None for a network with no
      relaxation here (max pooling): no box is bounded, so only the seeds
      are decided (vulnerable once ``predict`` confirms them), every other
      position stays UNKNOWN, as with ``max_boxes=0``.
    predict: the model's ``uint8[n, H, W, 3] -> float[n, C]`` (``Model.predict``):
      confirms every vulnerable colour and decides single colours near a tie.
    image: uint8[H, W, 3]; label: its (correctly predicted) class.
    target: -1: non-targeted (a position is vulnerable if some colour changes
      the label); else the class a colour must produce.
    box: ``(lo, hi)`` int[3] each, the colours considered (default
      [0, 255]^3: every colour).
    seeds: int[H, W, 3] a colour per position to try first (e.g. the grid
      reference's), -1 where none.
    max_boxes, max_seconds: the budget for the image (boxes bounded, wall
      seconds); positions still open then are UNKNOWN.
    batch: boxes per compiled call.
  """
  t0 = time.time()
  image = np.asarray(image, np.uint8)
  h, w = image.shape[:2]
  if net is not None and (h, w) != tuple(net.input_hw):
    raise ValueError(f"image is {h}x{w} but the network takes {net.input_hw}")
  lo0, hi0 = (np.zeros(3, np.int64), np.full(3, 255, np.int64)) if box is None else map(np.asarray, box)
  if target >= 0 and target == label:
    raise ValueError(f"target {target} is the label; a targeted certificate needs another class")
  if not (np.all(0 <= lo0) and np.all(lo0 <= hi0) and np.all(hi0 <= 255)):
    raise ValueError(f"box must satisfy 0 <= lo <= hi <= 255 per channel, got {lo0}, {hi0}")
  if net is None:
    max_boxes = 0
  else:
    acts = clean_activations(net, image)
    tol = float(EPS_REL * (1 + jnp.max(jnp.abs(acts[-1]))))
  status = np.full((h, w), UNKNOWN, np.int8)
  colour = np.full((h, w, 3), -1, np.int32)
  nboxes = np.zeros((h, w), np.int32)

  def mark(pos, cols):
    ok = _succeeds(predict, image, label, target, pos, cols)
    for (r, c), col in zip(pos[ok], cols[ok]):
      if status[r, c] != VULNERABLE:
        status[r, c], colour[r, c] = VULNERABLE, col
    return ok

  if seeds is not None:
    seeds = np.asarray(seeds)
    rr, cc = np.nonzero((seeds >= 0).all(-1))
    inside = ((seeds[rr, cc] >= lo0) & (seeds[rr, cc] <= hi0)).all(-1)
    mark(np.stack([rr, cc], 1)[inside], seeds[rr, cc][inside])
  rr, cc = np.nonzero(status != VULNERABLE)
  q_pos = np.stack([rr, cc], 1).astype(np.int32)
  q_lo = np.repeat(lo0[None], len(q_pos), 0).astype(np.int32)
  q_hi = np.repeat(hi0[None], len(q_pos), 0).astype(np.int32)
  fn = None if net is None else functools.partial(bound_boxes, net.layers, net.params, acts, jnp.asarray(image),
                                                  label, target, tol)
  used, exhausted = 0, False
  while len(q_pos):
    keep = status[q_pos[:, 0], q_pos[:, 1]] != VULNERABLE
    q_pos, q_lo, q_hi = q_pos[keep], q_lo[keep], q_hi[keep]
    if not len(q_pos):
      break
    if used >= max_boxes or (max_seconds is not None and time.time() - t0 > max_seconds):
      exhausted = True
      break
    n = min(len(q_pos), batch, max_boxes - used)
    size = batch if n > batch // 8 or batch < 128 else batch // 8  # at most two compiled sizes
    pos, lo, hi = q_pos[:n], q_lo[:n], q_hi[:n]
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], size - n, 0)])  # noqa: E731
    res = jax.device_get(fn(jnp.asarray(pad(pos)), jnp.asarray(pad(lo), jnp.float32),
                            jnp.asarray(pad(hi), jnp.float32)))
    used += n
    np.add.at(nboxes, (pos[:, 0], pos[:, 1]), 1)
    safe, sus, cands = res["safe"][:n], res["suspect"][:n], res["candidates"][:n].astype(np.int32)
    # Candidates that may succeed go to the model.
    # A single colour not certified goes to the model whatever the cone says.
    point = (lo == hi).all(-1)
    sus = sus | (point & ~safe)[:, None]
    bi, ci = np.nonzero(sus & ~safe[:, None])
    if len(bi):
      keys = np.unique(np.concatenate([pos[bi], cands[bi, ci]], 1), axis=0)
      mark(keys[:, :2], keys[:, 2:])
    split = ~safe & ~point & (status[pos[:, 0], pos[:, 1]] != VULNERABLE)
    ch = np.argmax(hi - lo, axis=1)[split]
    mid = (lo[split, ch] + hi[split, ch]) // 2
    lo_a, hi_a = lo[split].copy(), hi[split].copy()
    hi_a[np.arange(len(ch)), ch] = mid
    lo_b, hi_b = lo[split].copy(), hi[split].copy()
    lo_b[np.arange(len(ch)), ch] = mid + 1
    q_pos = np.concatenate([q_pos[n:], pos[split], pos[split]])
    q_lo = np.concatenate([q_lo[n:], lo_a, lo_b])
    q_hi = np.concatenate([q_hi[n:], hi_a, hi_b])
  open_ = np.zeros((h, w), bool)
  open_[q_pos[:, 0], q_pos[:, 1]] = True
  status[(status != VULNERABLE) & ~open_] = ROBUST
  return Certificate(status, colour, nboxes, time.time() - t0, exhausted)
