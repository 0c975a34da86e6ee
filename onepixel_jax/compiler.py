"""XLA compiler options per compiled function, chosen by measurement.

XLA takes options per compilation (``jax.jit(f, compiler_options=...)``), not
only process-wide through ``XLA_FLAGS``, so each kind of compiled function
gets the setting that wins for it:

- ``"train"`` (the training step): XLA:CPU's YNNPACK back end for dot
  products and reductions, ``xla_cpu_experimental_ynn_fusion_type=
  LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE``. The option replaces
  XLA's default list, which holds the reductions alone: naming DOT alone
  took them off YNNPACK, and batch norm's sums fell back to XLA's loop
  emitter (AllConv's 32x32x96 batch norm and ReLU, forward and backward:
  62 ms by default, 203 ms with DOT alone, 63 ms with both). Measured on
  AllConv, batch 128, 2 cores (Intel Xeon, AVX-512), one process,
  interleaved: 45.5 images/s with XLA's defaults at batch 256, 89.1 with
  DOT, 126.7 with DOT and REDUCE (125.8 adding ELTWISE). XLA's defaults run
  faster per image at batch 128 than at 256: on an AMD EPYC (Zen 4), one
  run of ``benchmark --train``, 22.8 at 256, 36.5 at 128, 60.8 tuned at 128.
  Without AVX-512 the gain is larger: on an AMD EPYC (Zen 3, AVX2 only),
  15.9 at 256, 20.2 at 128, 65.6 tuned at 128 (3.25x at the same batch), and
  3.1-3.7x against commit 31d21e1's own step (``scripts/before_after.sh``).
- ``"dense"`` (whole-network forward passes: evaluation, dense attacks):
  YNNPACK for dot products, ``LIBRARY_FUSION_TYPE_DOT``: AllConv's forward
  pass 1.66x (README, Speed). Adding REDUCE left the dense attack's rate as
  it was (531 / 533 queries/s), so forward passes keep DOT alone.
- ``"incremental"`` (sparse incremental attack inference): YNNPACK for dot
  products too. Measured on the 2-core CPU: ``apply_incremental`` on a DE
  batch (population 400, the attack's default slots) compiled with no option
  and with YNNPACK, 2-3 interleaved repeats each, noisy to ~10%: AllConv 1 pixel 1.04x and
  1.12x, 3 pixels 1.11x and 1.29x; VGG16 1 pixel 1.31x and 1.42x, 3 pixels
  1.18x; NiN 3 pixels 1.17x, 5 pixels 1.09x and 1.11x. (An earlier version of
  the incremental path measured 432 -> 375 queries/s on AllConv.) Adding
  REDUCE made it slower: AllConv 1 pixel 0.85x, 3 pixels 0.89x, VGG16 1
  pixel 0.79x (trained weights, interleaved, one process).
- ``"incremental_wide_delta"``: no option. The one exception measured: NiN's
  one-pixel path, whose 5x5 convolutions run as products of each changed
  patch with all 25 taps at once (``incremental._conv_delta_layer``), ran
  0.84x and 0.91x with YNNPACK. :func:`incremental.compiler_kind` picks it.

Model code reads the options of the function being traced
(:func:`tracing_options`): under YNNPACK dots, forward passes take XLA's own
convolution where the patch products ran before (:func:`xla_convolutions_win`).

Not adopted, measured in the same runs: YNNPACK / XNNPACK / oneDNN for
convolutions (``LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION``: 83-95 against
134 images/s), bfloat16 product operands (133 vs 134: XLA:CPU's convolutions
do not use the CPU's bfloat16 instructions), all-im2col convolutions (102),
batch 256 / 512 (67 / 66 against 73 at 128). ``python -m experiments.benchmark
--train`` measures the winner against the plain compilation in one run.

Options apply only on the backend they were measured on (CPU); elsewhere
:func:`options` is empty. ``ONEPIXEL_XLA_OPTIONS=0`` turns them all off.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable

import jax

KINDS = ("train", "dense", "incremental", "incremental_wide_delta")

_YNN_KEY = "xla_cpu_experimental_ynn_fusion_type"
_YNN_DOT = {_YNN_KEY: "LIBRARY_FUSION_TYPE_DOT"}
_YNN_DOT_REDUCE = {_YNN_KEY: "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE"}

# (backend, kind) -> XLA DebugOptions overrides.
_OPTIONS: dict[tuple[str, str], dict] = {
    ("cpu", "train"): _YNN_DOT_REDUCE,
    ("cpu", "dense"): _YNN_DOT,
    ("cpu", "incremental"): _YNN_DOT,
    ("cpu", "incremental_wide_delta"): {},
}


_DEFAULTS_DEPTH = [0]  # > 0 inside xla_defaults()


def enabled() -> bool:
  """False when ``$ONEPIXEL_XLA_OPTIONS`` is "0" or inside :func:`xla_defaults`."""
  return os.environ.get("ONEPIXEL_XLA_OPTIONS", "1") != "0" and not _DEFAULTS_DEPTH[0]


@contextlib.contextmanager
def xla_defaults():
  """Within this block, functions compiled through :func:`jit` get XLA's
  default options: the "before" of a before/after measurement."""
  _DEFAULTS_DEPTH[0] += 1
  try:
    yield
  finally:
    _DEFAULTS_DEPTH[0] -= 1


def options(kind: str, backend: str | None = None) -> dict:
  """The compiler options for a compiled function of ``kind`` on ``backend``
  (default: JAX's default backend); {} where none is measured to win."""
  if kind not in KINDS:
    raise ValueError(f"unknown compiled-function kind {kind!r}; valid: {', '.join(KINDS)}")
  if not enabled():
    return {}
  return dict(_OPTIONS.get((backend or jax.default_backend(), kind), {}))


# The options of the compiled functions being traced now, innermost last (see jit).
_TRACING: list = []


def tracing_options() -> dict:
  """The compiler options of the function :func:`jit` is tracing now ({}
  outside one), so that model code can choose what they compile best."""
  return dict(_TRACING[-1][1]) if _TRACING else {}


def xla_convolutions_win() -> bool:
  """Whether XLA's own convolution is the faster route in the function being
  traced, where the patch products (``models.patchconv``) ran before: under
  YNNPACK dot fusion in forward passes (the tuned "dense" and "incremental"
  kinds on CPU; training steps were not measured and keep them) for 1x1
  convolutions on maps larger than 6x6 and the incremental path's windows.
  Measured interleaved on the 2-core CPU, bundled weights, a DE batch:
  NiN 5 pixels incremental 1.44x and dense 1.65x, AllConv 3 pixels
  incremental 1.39x (README, Speed). Tiny SAME maps keep the patch products (VGG16's 2x2 and
  4x4 blocks ran 0.14x as XLA convolutions)."""
  return (not _PATCH_PRODUCTS[0] and bool(_TRACING) and _TRACING[-1][0] in _XLA_CONV_KINDS
          and tracing_options().get(_YNN_KEY) == _YNN_DOT[_YNN_KEY])


# Kinds whose route was measured (training steps keep the patch products).
_XLA_CONV_KINDS = ("dense", "incremental")


def strided_convolutions_as_patches() -> bool:
  """Whether strided convolutions take one im2col product (``models.patchconv``)
  in the function being traced: in tuned training steps (YNNPACK options),
  where the backward pass of XLA's strided convolution is slow. AllConv's
  two stride-2 layers, forward and backward, batch 128, one process: 159 ->
  124 ms (32x32, 96 -> 96) and 97 -> 88 ms (16x16, 192 -> 192); the whole
  step 119.8 -> 128.5 images/s (README, "Compiler options per compiled
  function, and training speed")."""
  return bool(_TRACING) and _TRACING[-1][0] == "train" and _YNN_KEY in tracing_options()


_PATCH_PRODUCTS = [0]  # > 0 inside patch_products()


@contextlib.contextmanager
def patch_products():
  """Within this block functions traced keep the patch products wherever they
  took them before :func:`xla_convolutions_win` (the "before" of a
  before/after measurement)."""
  _PATCH_PRODUCTS[0] += 1
  try:
    yield
  finally:
    _PATCH_PRODUCTS[0] -= 1


def jit(fun: Callable, kind: str, *, tuned: bool = True, **jit_kwargs) -> Callable:
  """``jax.jit(fun, **jit_kwargs)`` compiled with :func:`options` for ``kind``
  (``tuned=False``: XLA's defaults, for comparisons); while it traces ``fun``,
  :func:`tracing_options` returns those options."""
  opts = options(kind) if tuned else {}

  @functools.wraps(fun)
  def traced(*args, **kwargs):
    _TRACING.append((kind, opts))
    try:
      return fun(*args, **kwargs)
    finally:
      _TRACING.pop()

  return jax.jit(traced, compiler_options=opts or None, **jit_kwargs)


# (id(owner), kind, options, key) -> (owner, jitted function), oldest first. An entry
# holds its owner, so the id is not reused while it is cached; beyond _KEPT the oldest
# entries go, so a process that loads many models does not keep them all.
_CACHE: dict = {}
_KEPT = 8


def cached(owner, kind: str, key, make: Callable) -> Callable:
  """The jitted function ``make()`` (built with :func:`jit` for ``kind``),
  reused while ``owner`` (a model or predict callable: the very object),
  ``key`` (whatever else its trace depends on, hashable), the options for
  ``kind`` and :func:`patch_products` stay the same.

  ``jax.jit`` caches compilations per function object, and a loop made anew
  for each call (the attack engine's, an analysis's queries) compiled anew
  each time: NiN's attack loop ~5 s on the 2-core CPU, also when a caller
  attacks image after image with one model and settings. Weights are inputs
  of these functions, not part of them.
  """
  full = (id(owner), kind, tuple(sorted(options(kind).items())), _PATCH_PRODUCTS[0] > 0, key)
  hit = _CACHE.pop(full, None)
  if hit is None or hit[0] is not owner:
    hit = (owner, make())
  _CACHE[full] = hit  # newest last
  while len(_CACHE) > _KEPT:
    del _CACHE[next(iter(_CACHE))]
  return hit[1]
