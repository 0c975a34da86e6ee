"""Throughput measurements: model queries per second of an attack, dense and
incremental, against bare forward passes of the same model and the machine's
peak FLOP/s.

A query is one candidate image through the model. The attack's figures count
every query of ``N`` attacks run for the full generation budget (no early
stop), so they are directly comparable to ``batch * popsize`` images per bare
forward pass. *Dense* attacks write each candidate's pixels into its image and
run the whole network (``attack(..., incremental=False)``); *incremental* ones
recompute only the activation windows the changed pixels reach
(``Model.apply_incremental``, :mod:`onepixel_jax.models.incremental`), the attack's
default for models that support it.

FLOP/s fractions count a query's *dense* FLOPs (XLA's cost analysis of the
dense forward pass), so the incremental path's "effective" fraction can exceed
1. The peak is measured, not taken from a data sheet: the best of a few large
matrix products and convolutions (``peak_flops_per_s``).

Compiled functions get :mod:`onepixel_jax.compiler`'s options; ``run(...,
compare_xla=True)`` also measures the forward pass and both attack paths
compiled with XLA's defaults (``compiler``: the options each kind gets). The
incremental attack is also measured with every window layer computed as a
window (``incremental.windows_only``: without the window route's shortcuts,
1x1 convolutions on the patches and one-pixel convolutions by linearity), as
``incremental_windows_queries_per_s`` and ``shortcuts_speedup``.
:func:`train_rates` measures training throughput, split into its parts, for
the training settings before the training-speed work (batch 256 and 128) and
the library's defaults now, interleaved in one process; :func:`product_rates`, a training
step's three matrix products in float32 and with bfloat16 operands;
:func:`convolution_rates`, the incremental path's window convolutions by XLA's
convolution and by the patch products, with XLA's default and tuned options.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from onepixel_jax import compiler, models, train
from onepixel_jax.attack import AttackConfig, attack, default_batch_size
from onepixel_jax.models import incremental, patchconv
from onepixel_jax.paper.reproduce import PAPER

# Paper, Table VI: mean model evaluations per attack (1 pixel, CIFAR-10), and the
# Table IV workload: 500 images x 9 targeted attacks per network.
TABLE_VI_EVALUATIONS = {m: v[0] for m, v in PAPER["vi"].items()}
TABLE_IV_IMAGES = 500
TABLE_IV_TARGETS = 9


def _timed(fn, repeats: int) -> float:
  fn()  # compile and warm up
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t)
  return best


def forward_queries_per_s(model, num_images: int, repeats: int = 3, seed: int = 0) -> float:
  """Images per second of ``model.apply`` on uint8[num_images, H, W, 3], jitted,
  the images split over all local devices as the attack splits its slots."""
  h, w = model.input_size
  x = np.random.default_rng(seed).integers(0, 256, (num_images, h, w, 3), dtype=np.uint8)
  devices = jax.local_devices()
  if len(devices) > 1 and num_images % len(devices) == 0:
    mesh = jax.sharding.Mesh(np.asarray(devices), ("batch",))
    x = jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch")))
  else:
    x = jnp.asarray(x)
  f = compiler.jit(model.apply, "dense")
  return num_images / _timed(lambda: f(model.variables, x).block_until_ready(), repeats)


def attack_queries_per_s(model, config: AttackConfig, num_attacks: int, batch_size: int, seed: int = 0,
            devices=None, incremental: bool = True) -> float:
  """Queries per second of ``num_attacks`` non-targeted attacks that run every generation."""
  h, w = model.input_size
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_attacks, h, w, 3), dtype=np.uint8)
  labels = rng.integers(0, model.num_classes, num_attacks)
  cfg = AttackConfig(**{**vars(config), "early_stop": "none"})

  def run(s):
    return attack(model, images, labels, config=cfg, seed=s, batch_size=batch_size, devices=devices,
           progress=False, incremental=incremental)

  run(seed)  # compile
  t = time.perf_counter()
  result = run(seed + 1)
  elapsed = time.perf_counter() - t
  return float(result.queries.sum()) / elapsed


def xla_flops(lowered) -> float | None:
  """FLOPs of a lowered computation by XLA's cost analysis, or None.

  The analysis of the lowered HLO answers on CPU; on GPUs it can be None
  (seen: jax 0.11.2, H200), and the compiled executable's analysis is asked
  instead. None where neither counts FLOPs, so a benchmark still reports its
  rates.
  """
  for analyse in (lowered.cost_analysis, lambda: lowered.compile().cost_analysis()):
    cost = analyse()
    cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
    if isinstance(cost, dict) and cost.get("flops", 0) > 0:
      return float(cost["flops"])
  return None


def dense_flops_per_query(model) -> float | None:
  """FLOPs of one dense forward pass (XLA's cost analysis, per image), or None."""
  h, w = model.input_size
  n = 8
  flops = xla_flops(jax.jit(model.apply).lower(model.variables, jax.ShapeDtypeStruct((n, h, w, 3), jnp.uint8)))
  return None if flops is None else flops / n


# Candidate shapes for the peak: matrix products (M, K, N) and 3x3 convolutions
# (batch, map, Cin, Cout), the latter through XLA's convolution and as products.
_PEAK_DOTS = ((2048, 2048, 2048), (28800, 1728, 192))
_PEAK_CONVS = ((800, 8, 256, 256), (800, 4, 512, 512), (800, 16, 128, 128))


@functools.lru_cache(maxsize=None)
def peak_flops_per_s(repeats: int = 3) -> tuple[float, str]:
  """(FLOP/s, shape) of the fastest of a few large float32 matrix products and
  convolutions on the default device: the machine's practical peak."""
  rng = np.random.default_rng(0)
  best = (0.0, "")
  dn = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
  for m, k, n in _PEAK_DOTS:
    a, b = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((m, k), (k, n)))
    f = jax.jit(jnp.dot)
    rate = 2 * m * k * n / _timed(lambda: f(a, b).block_until_ready(), repeats)
    best = max(best, (rate, f"dot {m}x{k} @ {k}x{n}"))
  for n, hw, cin, cout in _PEAK_CONVS:
    x = jnp.asarray(rng.normal(size=(n, hw, hw, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)), jnp.float32)
    flops = 2 * n * hw * hw * 9 * cin * cout
    for name, fn in (("xla", lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)),
            ("patches", lambda x, w: patchconv.conv_patches(x, w, (1, 1), "SAME"))):
      f = jax.jit(fn)
      rate = flops / _timed(lambda: f(x, w).block_until_ready(), repeats)
      best = max(best, (rate, f"conv3x3 {cin}->{cout} on {hw}x{hw}, batch {n} ({name})"))
  return best


# Settings that ``run(..., ablate=...)`` can measure without, one at a time:
# name -> (a context that turns it off while tracing, whether it reaches the dense path).
ABLATIONS = {
    "pointwise": (lambda: incremental.without_shortcuts("pointwise"), False),
    "delta": (lambda: incremental.without_shortcuts("delta"), False),
    "early_dense": (lambda: incremental.without_shortcuts("early_dense"), False),
    "xla_conv": (compiler.patch_products, True),
}


def run(model, config: AttackConfig, batch_size: int | None = None, num_attacks: int | None = None,
    repeats: int = 3, peak: bool = True, compare_xla: bool = False, ablate=()) -> dict:
  """All measurements for one model; returns a JSON-ready dict.

  Keys: ``forward_queries_per_s`` (bare dense forward passes of
  ``batch * popsize`` images), ``dense_queries_per_s`` and
  ``incremental_queries_per_s`` (full attacks; the latter None if the model
  has no ``apply_incremental``), ``attack_queries_per_s`` (the attack as it runs
  by default: incremental where supported), ``attack_overhead`` (the dense
  attack's time beyond its forward passes), FLOP figures and the estimated
  time of the paper's Table IV workload (``table4_hours``). With
  ``compare_xla``: ``forward_queries_per_s_xla_defaults``,
  ``dense_queries_per_s_xla_defaults`` and (where the model has one)
  ``incremental_queries_per_s_xla_defaults``, the same compiled with XLA's defaults.
  For each name in ``ablate`` (``ABLATIONS``):
  ``incremental_without_<name>_queries_per_s`` and ``<name>_speedup``, the
  incremental attack without that one setting and the default's rate over it,
  and for settings that reach the dense path also
  ``dense_without_<name>_queries_per_s`` and ``dense_<name>_speedup``.
  """
  for name in ablate:
    if name not in ABLATIONS:
      raise ValueError(f"unknown setting {name!r} to ablate; valid: {', '.join(ABLATIONS)}")
  devices = jax.local_devices()
  def slots(incremental):
    b = batch_size or default_batch_size(config.popsize, 10**9, len(devices), devices[0].platform, incremental,
                                             config.pixels)
    return len(devices) * -(-b // len(devices))

  b = slots(False)
  n = num_attacks or b
  fwd = forward_queries_per_s(model, b * config.popsize, repeats)
  dense = attack_queries_per_s(model, config, n, b, incremental=False)
  incr, incr_windows, bi = None, None, None
  if getattr(model, "supports_incremental", False):
    bi = slots(True)
    incr = attack_queries_per_s(model, config, num_attacks or bi, bi, incremental=True)
    with incremental.windows_only():
      incr_windows = attack_queries_per_s(model, config, num_attacks or bi, bi, incremental=True)
  best = incr or dense
  flops = dense_flops_per_query(model)
  out = {
    "model": model.name,
    "backend": devices[0].platform,
    "device_kind": devices[0].device_kind,
    "num_devices": len(devices),
    "popsize": config.popsize,
    "generations": config.generations,
    "pixels": config.pixels,
    "batch_size": b,
    "images_per_forward": b * config.popsize,
    "num_attacks": n,
    "incremental_batch_size": bi,
    "forward_queries_per_s": round(fwd, 1),
    "dense_queries_per_s": round(dense, 1),
    "incremental_queries_per_s": None if incr is None else round(incr, 1),
    "attack_queries_per_s": round(best, 1),
    "attack_overhead": round(1 - dense / fwd, 4),
    "incremental_speedup": None if incr is None else round(incr / dense, 2),
    "incremental_windows_queries_per_s": None if incr is None else round(incr_windows, 1),
    "shortcuts_speedup": None if incr is None else round(incr / incr_windows, 2),
    "dense_gflops_per_query": None if flops is None else round(flops / 1e9, 4),
  }
  for name in ablate:
    without, dense_too = ABLATIONS[name]
    if dense_too:
      with without():
        rate = attack_queries_per_s(model, config, n, b, incremental=False)
      out[f"dense_without_{name}_queries_per_s"] = round(rate, 1)
      out[f"dense_{name}_speedup"] = round(dense / rate, 2)
    if incr is not None:
      with without():
        rate = attack_queries_per_s(model, config, num_attacks or bi, bi, incremental=True)
      out[f"incremental_without_{name}_queries_per_s"] = round(rate, 1)
      out[f"{name}_speedup"] = round(incr / rate, 2)
  if compare_xla:
    with compiler.xla_defaults():
      out["forward_queries_per_s_xla_defaults"] = round(forward_queries_per_s(model, b * config.popsize, repeats), 1)
      out["dense_queries_per_s_xla_defaults"] = round(attack_queries_per_s(model, config, n, b, incremental=False), 1)
      if incr is not None:
        out["incremental_queries_per_s_xla_defaults"] = round(
            attack_queries_per_s(model, config, num_attacks or bi, bi, incremental=True), 1)
  if peak:
    peak_rate, shape = peak_flops_per_s()
    out.update({
      "peak_gflops_per_s": round(peak_rate / 1e9, 1),
      "peak_shape": shape,
      "dense_peak_fraction": None if flops is None else round(dense * flops / peak_rate, 3),
      "incremental_peak_fraction": None if incr is None or flops is None else round(incr * flops / peak_rate, 3),
    })
  evals = TABLE_VI_EVALUATIONS.get(model.name)
  if evals is not None and config.pixels == 1:
    queries = TABLE_IV_IMAGES * TABLE_IV_TARGETS * evals
    out.update({"table4_queries": queries, "table4_hours": round(queries / best / 3600, 1)})
  return out


PEERS_QUERIES_PER_S = 340  # torchattacks OnePixel and ART PixelAttack on AllConv, this 2-core CPU (issue 8)


def markdown_table(results: list[dict]) -> str:
  """A README table of ``run`` results (one row per model and device count)."""
  rows = [
    "| model | devices | attacks per pass (dense / incr.) | forward img/s | dense queries/s | incremental queries/s | speedup "
    "| dense / incremental share of peak | Table IV (1 px) |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for r in results:
    inc = r.get("incremental_queries_per_s")
    frac = f"{r['dense_peak_fraction']:.0%}" if "dense_peak_fraction" in r else "-"
    if inc is not None and "incremental_peak_fraction" in r:
      frac += f" / {r['incremental_peak_fraction']:.0%}"
    t4 = f"{r['table4_hours']:.0f} h" if "table4_hours" in r else "-"
    speedup = "-" if inc is None else f"{r['incremental_speedup']:.1f}x"
    slots = r["batch_size"]
    if r.get("incremental_batch_size") not in (None, slots):
      slots = f"{slots} / {r['incremental_batch_size']}"
    rows.append(
      f"| {r['model']} | {r['num_devices']} | {slots} x {r['popsize']} | {r['forward_queries_per_s']:.0f} "
      f"| {r['dense_queries_per_s']:.0f} | {'-' if inc is None else f'{inc:.0f}'} "
      f"| {speedup} | {frac} | {t4} |")
  rows.append(f"| torchattacks / ART (AllConv, PyTorch) | 1 | 1 x 400 | 360 | ~{PEERS_QUERIES_PER_S} | - | - | - | - |")
  return "\n".join(rows)


def corner_search_rates(model, num_images: int = 2, seed: int = 0) -> dict:
  """Queries per second of the analyses' corner search
  (:func:`analysis.corner_search.search`, 8,192 queries per 32x32 image) on
  ``num_images`` random images, four ways in one run: the dense path with
  XLA's default compilation (as before the compiler options and the
  incremental path reached the analyses), the tuned dense path, the
  incremental path (the default where the model has one) and the incremental
  path with windows only (``incremental.windows_only``: without the window
  route's shortcuts). ``speedup``: the default path over the first."""
  from onepixel_jax.analysis import corner_search
  h, w = model.input_size
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_images, h, w, 3), dtype=np.uint8)
  labels = rng.integers(0, model.num_classes, num_images)
  queries = num_images * h * w * 8

  def rate(incremental):
    corner_search.search(model, images[:1], labels[:1], incremental=incremental)  # compile
    t = time.perf_counter()
    corner_search.search(model, images, labels, incremental=incremental)
    return round(queries / (time.perf_counter() - t), 1)

  with compiler.xla_defaults():
    before = rate(False)
  supported = getattr(model, "supports_incremental", False)
  out = {"model": model.name, "num_images": num_images, "queries_per_image": h * w * 8,
         "dense_xla_defaults_queries_per_s": before, "dense_queries_per_s": rate(False),
         "incremental_queries_per_s": rate(True) if supported else None}
  if supported:
    with incremental.windows_only():
      out["incremental_windows_queries_per_s"] = rate(True)
  out["speedup"] = round((out["incremental_queries_per_s"] or out["dense_queries_per_s"]) / before, 2)
  return out


# ------------------------------------------------------------ product precision

# A convolution written as a matrix product (``patchconv``) at batch 128 is
# ``[M = N h w, K = k k Cin] @ [K, N = Cout]``: AllConv's 96 -> 96 layer on
# 32x32 maps and its 192 -> 192 layer on 16x16, then a square product.
PRODUCT_SHAPES = ((131072, 864, 96), (32768, 1728, 192), (2048, 2048, 2048))


def product_functions() -> dict:
  """The three matrix products of a convolution's training step, in the
  operands' dtype with float32 results (``preferred_element_type``):

  - ``forward``: ``x[M, K] @ w[K, N]``
  - ``weight_gradient``: ``x[M, K]^T @ g[M, N] -> [K, N]``
  - ``input_gradient``: ``g[M, N] @ w[K, N]^T -> [M, K]``
  """
  def dot(dims):
    return jax.jit(lambda a, b: lax.dot_general(a, b, (dims, ((), ())), preferred_element_type=jnp.float32))

  return {"forward": dot(((1,), (0,))), "weight_gradient": dot(((0,), (0,))),
          "input_gradient": dot(((1,), (1,)))}


def cpu_flags(names=("avx512_bf16", "amx_bf16", "avx512f", "avx2")) -> list[str]:
  """Which of ``names`` /proc/cpuinfo lists (empty where it cannot be read)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
  except OSError:
    flags = []
  return [n for n in names if n in flags]


def product_rates(shapes=PRODUCT_SHAPES, repeats: int = 3, seed: int = 0) -> list[dict]:
  """GFLOP/s of :func:`product_functions` with float32 and with bfloat16
  operands (float32 results; operands cast before timing), per shape: whether this CPU's bfloat16
  instructions would speed up a training step's products. One dict per
  (shape, product): ``float32_gflops_per_s``, ``bfloat16_gflops_per_s``,
  ``bfloat16_speedup``; ``cpu_flags`` names the CPU's relevant features."""
  rng = np.random.default_rng(seed)
  fns = product_functions()
  flags = cpu_flags()
  out = []
  for m, k, n in shapes:
    x, w, g = (rng.normal(size=s).astype(np.float32) for s in ((m, k), (k, n), (m, n)))
    args = {"forward": (x, w), "weight_gradient": (x, g), "input_gradient": (g, w)}
    for prod, (a, b) in args.items():
      rec = {"shape": [m, k, n], "product": prod, "cpu_flags": flags}
      secs = {}
      for dt in ("float32", "bfloat16"):
        ad, bd = jnp.asarray(a, dt), jnp.asarray(b, dt)  # operands as a previous layer would leave them
        secs[dt] = _timed(lambda: fns[prod](ad, bd).block_until_ready(), repeats)
      for dt, t in secs.items():
        rec[f"{dt}_gflops_per_s"] = round(2 * m * k * n / t / 1e9, 2)
      rec["bfloat16_speedup"] = round(secs["float32"] / secs["bfloat16"], 2)
      out.append(rec)
  return out


# Window convolutions of the incremental path, as (output side, kernel side, Cin,
# Cout, batch) VALID convolutions: AllConv's 3x3 192 -> 192 on 6x6 and 8x8 outputs,
# NiN's second 5x5 on an 8x8 window, and 3x3 convolutions with VGG16's tiny
# 4x4 and 2x2 outputs.
CONV_SHAPES = ((6, 3, 192, 192, 800), (8, 3, 192, 192, 800), (8, 5, 96, 192, 400),
               (4, 3, 256, 256, 800), (2, 3, 512, 512, 800))
CONV_ROUTES = ("xla", "shifted", "im2col")


def convolution_functions(kind: str = "incremental", tuned: bool = True) -> dict:
  """A VALID stride-1 NHWC/HWIO convolution by each route, compiled as ``kind``
  (:func:`compiler.jit`; ``tuned=False``: XLA's default options): ``"xla"``
  (``lax.conv_general_dilated``) and the patch products of
  :func:`patchconv.conv_patches` (``"shifted"``, ``"im2col"``).
  ``x: float32[N, h, w, Cin]``, ``w: float32[k, k, Cin, Cout]`` ->
  ``float32[N, h - k + 1, w - k + 1, Cout]``."""
  dn = ("NHWC", "HWIO", "NHWC")
  fns = {"xla": lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dn)}
  for method in CONV_ROUTES[1:]:
    fns[method] = functools.partial(patchconv.conv_patches, strides=(1, 1), padding="VALID", method=method)
  return {name: compiler.jit(f, kind, tuned=tuned) for name, f in fns.items()}


def convolution_rates(shapes=CONV_SHAPES, repeats: int = 3, kind: str = "incremental",
                      seed: int = 0) -> list[dict]:
  """GFLOP/s of each route of :func:`convolution_functions` per shape, compiled
  with XLA's defaults and with the options tuned for ``kind``: which route wins
  where (``compiler.xla_convolutions_win``, ``patchconv.TINY_OUTPUT_PIXELS``).
  One dict per (shape, options): ``output``, ``kernel``, ``channels``,
  ``batch``, ``options`` ("defaults" / "tuned") and ``xla_options``,
  ``<route>_gflops_per_s``, ``xla_speedup`` (XLA's convolution over the faster
  patch route) and ``max_abs_difference`` (largest difference of a route's
  output from XLA's convolution: the routes compute the same sums).

  A lead, not a verdict: inside a network small maps behave otherwise (XLA's
  convolution on AllConv's 6x6 layer, 2.3x here, made its forward pass 0.53x;
  README, Speed), so routes are chosen by the networks' forward passes."""
  rng = np.random.default_rng(seed)
  out = []
  for o, k, cin, cout, n in shapes:
    x = jnp.asarray(rng.normal(size=(n, o + k - 1, o + k - 1, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
    flops = 2 * n * o * o * k * k * cin * cout
    for tuned in (False, True):
      fns = convolution_functions(kind, tuned)
      ys = {name: f(x, w) for name, f in fns.items()}
      rec = {"output": [o, o], "kernel": k, "channels": [cin, cout], "batch": n,
             "options": "tuned" if tuned else "defaults", "xla_options": compiler.options(kind) if tuned else {}}
      rates = {name: flops / _timed(lambda: f(x, w).block_until_ready(), repeats) / 1e9 for name, f in fns.items()}
      rec.update({f"{name}_gflops_per_s": float(f"{r:.3g}") for name, r in rates.items()})  # tiny shapes too
      rec["xla_speedup"] = round(rates["xla"] / max(rates[m] for m in CONV_ROUTES[1:]), 2)
      rec["max_abs_difference"] = float(max(jnp.max(jnp.abs(ys[m] - ys["xla"])) for m in CONV_ROUTES[1:]))
      out.append(rec)
  return out


# ------------------------------------------------------------ training speed

# The training settings before the training-speed work, XLA's default
# compilation at the old configs' default batch (256) and at the batch of the
# issue's measurement, the command that trained the then-bundled checkpoints
# (128), and the library's defaults now.
TRAIN_BEFORE = {"batch_size": 256, "tuned": False}
TRAIN_BEFORE_128 = {"batch_size": 128, "tuned": False}
TRAIN_AFTER = {"batch_size": 128, "tuned": True}


def _train_variant(name: str, batch_size: int, tuned: bool, seed: int = 0) -> dict:
  """Compiled pieces of one training step of the CIFAR-10 network ``name``
  (the library's training code) and inputs for them."""
  config = train.default_config(name)
  config.batch_size = batch_size
  module = models.create(name)
  state = train.create_state(module, jax.random.PRNGKey(seed), train.make_optimizer(config, 100))
  rng = np.random.default_rng(seed)
  pool = rng.integers(0, 256, (45_000, 32, 32, 3), dtype=np.uint8)  # a training split's size
  pool_labels = rng.integers(0, 10, 45_000).astype(np.int32)
  key = jax.random.PRNGKey(seed)
  kw = {"num_classes": 10, "label_smoothing": config.label_smoothing}
  jit = functools.partial(compiler.jit, kind="train", tuned=tuned)
  augment = jit(functools.partial(train.augment, pad=config.crop_padding))
  grads_fn = jit(functools.partial(train.gradients, **kw))
  update = jit(lambda s, g, b: s.apply_gradients(grads=g, batch_stats=b))
  step = jit(functools.partial(train.train_step, pad=config.crop_padding, **kw))

  def pipeline():
    idx = rng.integers(0, len(pool), batch_size)
    return jax.block_until_ready((jnp.asarray(pool[idx]), jnp.asarray(pool_labels[idx])))

  x, y = pipeline()
  xa = augment(key, x)
  g, bstats, _, _ = grads_fn(state, xa, y, key)
  flops = xla_flops(jax.jit(functools.partial(train.train_step, pad=config.crop_padding, **kw)).lower(
      state, x, y, key))
  return {
      "batch_size": batch_size, "tuned": tuned, "flops_per_step": flops,
      "parts": {
          "pipeline": pipeline,
          "augment": lambda: jax.block_until_ready(augment(key, x)),
          "forward_backward": lambda: jax.block_until_ready(grads_fn(state, xa, y, key)),
          "update": lambda: jax.block_until_ready(update(state, g, bstats)),
          "step": lambda: jax.block_until_ready(step(state, x, y, key)),
      }}


def train_rates(name: str, variants=(TRAIN_BEFORE, TRAIN_BEFORE_128, TRAIN_AFTER), repeats: int = 3,
                peak: bool = True) -> list[dict]:
  """Training throughput of ``name`` for each variant (``batch_size``,
  ``tuned``: :mod:`onepixel_jax.compiler`'s options or XLA's defaults), the
  variants measured interleaved in one process so that they share the
  machine's state; each figure is the best of ``repeats``.

  Returns one JSON-ready dict per variant: images/s of the input pipeline
  (host gather of a random batch from a 45,000-image array and transfer), of
  augmentation, of the forward+backward pass, of the optimizer update and of
  the whole compiled step (augmentation, forward, backward, update);
  ``end_to_end_images_per_s`` (pipeline + step), XLA's FLOPs per step and the
  step's share of the measured peak (:func:`peak_flops_per_s`);
  ``step_speedup``, its step rate over the first variant's, and
  ``step_speedup_same_batch``, over the untuned variant's at its batch size
  (where there is one): the per-image gain of the compilation alone.
  """
  prepared = [_train_variant(name, v["batch_size"], v["tuned"]) for v in variants]
  best = [{part: float("inf") for part in p["parts"]} for p in prepared]
  for p in prepared:  # compile and warm up
    for fn in p["parts"].values():
      fn()
  for _ in range(repeats):
    for p, b in zip(prepared, best):
      for part, fn in p["parts"].items():
        t = time.perf_counter()
        fn()
        b[part] = min(b[part], time.perf_counter() - t)
  peak_rate = peak_flops_per_s()[0] if peak else None
  out = []
  for p, b in zip(prepared, best):
    n = p["batch_size"]
    rec = {"model": name, "batch_size": n,
           "xla_options": compiler.options("train") if p["tuned"] else {},
           **{f"{part}_images_per_s": round(n / t, 1) for part, t in b.items()},
           "end_to_end_images_per_s": round(n / (b["pipeline"] + b["step"]), 1),
           "gflops_per_step": None if p["flops_per_step"] is None else round(p["flops_per_step"] / 1e9, 2)}
    if peak_rate and p["flops_per_step"] is not None:
      rec["step_peak_fraction"] = round(p["flops_per_step"] / b["step"] / peak_rate, 3)
    out.append(rec)
  base = out[0]["step_images_per_s"]
  untuned = {rec["batch_size"]: rec["step_images_per_s"] for rec in out if not rec["xla_options"]}
  for rec in out:
    rec["step_speedup"] = round(rec["step_images_per_s"] / base, 2)
    if rec["batch_size"] in untuned:
      rec["step_speedup_same_batch"] = round(rec["step_images_per_s"] / untuned[rec["batch_size"]], 2)
  return out


def train_markdown_table(results: list[dict]) -> str:
  """A README table of :func:`train_rates` results."""
  rows = ["| model | batch | XLA options | pipeline img/s | augment img/s | fwd+bwd img/s | update img/s "
          "| step img/s | end to end img/s | GFLOP/step | share of peak | step speedup | at the same batch |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in results:
    opts = ", ".join(f"{k.replace('xla_cpu_experimental_', '')}={v}" for k, v in r["xla_options"].items()) or "defaults"
    frac = f"{r['step_peak_fraction']:.0%}" if "step_peak_fraction" in r else "-"
    same = f"{r['step_speedup_same_batch']:.2f}x" if "step_speedup_same_batch" in r else "-"
    gflops = "-" if r["gflops_per_step"] is None else f"{r['gflops_per_step']:.1f}"
    rows.append(f"| {r['model']} | {r['batch_size']} | {opts} | {r['pipeline_images_per_s']:.0f} "
                f"| {r['augment_images_per_s']:.0f} | {r['forward_backward_images_per_s']:.0f} "
                f"| {r['update_images_per_s']:.0f} | {r['step_images_per_s']:.0f} "
                f"| {r['end_to_end_images_per_s']:.0f} | {gflops} | {frac} "
                f"| {r['step_speedup']:.2f}x | {same} |")
  return "\n".join(rows)
