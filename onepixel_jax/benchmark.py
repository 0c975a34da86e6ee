"""Throughput measurements: model queries per second of an attack, dense and
incremental, against bare forward passes of the same model and the machine's
peak FLOP/s.

A query is one candidate image through the model. The attack's figures count
every query of ``N`` attacks run for the full generation budget (no early
stop), so they are directly comparable to ``batch * popsize`` images per bare
forward pass. *Dense* attacks write each candidate's pixels into its image and
run the whole network (``attack(..., incremental=False)``); *incremental* ones
recompute only the activation windows the changed pixels reach
(``Model.apply_pixels``, :mod:`onepixel_jax.models.incremental`), the attack's
default for models that support it.

FLOP/s fractions count a query's *dense* FLOPs (XLA's cost analysis of the
dense forward pass), so the incremental path's "effective" fraction can exceed
1. The peak is measured, not taken from a data sheet: the best of a few large
matrix products and convolutions (``peak_flops_per_s``).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from onepixel_jax.attack import AttackConfig, attack, default_batch_size

# Paper, Table VI: mean model evaluations per attack (1 pixel, CIFAR-10), and the
# Table IV workload: 500 images x 9 targeted attacks per network.
TABLE_VI_EVALUATIONS = {"allconv": 16_000, "nin": 12_400, "vgg16": 20_000}
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
    f = jax.jit(model.apply)
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


def dense_flops_per_query(model) -> float:
    """FLOPs of one dense forward pass (XLA's cost analysis, per image)."""
    h, w = model.input_size
    n = 8
    lowered = jax.jit(model.apply).lower(model.variables, jax.ShapeDtypeStruct((n, h, w, 3), jnp.uint8))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) / n


# Candidate shapes for the peak: matrix products (M, K, N) and 3x3 convolutions
# (batch, map, Cin, Cout), the latter through XLA's convolution and as products.
_PEAK_DOTS = ((2048, 2048, 2048), (28800, 1728, 192))
_PEAK_CONVS = ((800, 8, 256, 256), (800, 4, 512, 512), (800, 16, 128, 128))


@functools.lru_cache(maxsize=None)
def peak_flops_per_s(repeats: int = 3) -> tuple[float, str]:
    """(FLOP/s, shape) of the fastest of a few large float32 matrix products and
    convolutions on the default device: the machine's practical peak."""
    from onepixel_jax.models import patchconv
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


def run(model, config: AttackConfig, batch_size: int | None = None, num_attacks: int | None = None,
        repeats: int = 3, peak: bool = True) -> dict:
    """All measurements for one model; returns a JSON-ready dict.

    Keys: ``forward_queries_per_s`` (bare dense forward passes of
    ``batch * popsize`` images), ``dense_queries_per_s`` and
    ``incremental_queries_per_s`` (full attacks; the latter None if the model
    has no ``apply_pixels``), ``attack_queries_per_s`` (the attack as it runs
    by default: incremental where supported), ``attack_overhead`` (the dense
    attack's time beyond its forward passes), FLOP figures and the estimated
    time of the paper's Table IV workload (``table4_hours``).
    """
    devices = jax.local_devices()
    def slots(incremental):
        b = batch_size or default_batch_size(config.popsize, 10**9, len(devices), devices[0].platform, incremental)
        return len(devices) * -(-b // len(devices))

    b = slots(False)
    n = num_attacks or b
    fwd = forward_queries_per_s(model, b * config.popsize, repeats)
    dense = attack_queries_per_s(model, config, n, b, incremental=False)
    incr, bi = None, None
    if getattr(model, "supports_pixels", False):
        bi = slots(True)
        incr = attack_queries_per_s(model, config, num_attacks or bi, bi, incremental=True)
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
        "dense_gflops_per_query": round(flops / 1e9, 4),
    }
    if peak:
        peak_rate, shape = peak_flops_per_s()
        out.update({
            "peak_gflops_per_s": round(peak_rate / 1e9, 1),
            "peak_shape": shape,
            "dense_peak_fraction": round(dense * flops / peak_rate, 3),
            "incremental_peak_fraction": None if incr is None else round(incr * flops / peak_rate, 3),
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
