"""Throughput measurements: model queries per second of an attack against bare
forward passes of the same model on the same number of images.

A query is one candidate image through the model. The attack's figure counts
every query of ``N`` attacks run for the full generation budget (no early
stop), so it is directly comparable to ``batch * popsize`` images per bare
forward pass.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax.attack import AttackConfig, attack, default_batch_size


def _timed(fn, repeats: int) -> float:
    fn()  # compile and warm up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def forward_queries_per_s(model, num_images: int, repeats: int = 3, seed: int = 0) -> float:
    """Images per second of ``model.apply`` on uint8[num_images, H, W, 3], jitted."""
    h, w = model.input_size
    x = jnp.asarray(np.random.default_rng(seed).integers(0, 256, (num_images, h, w, 3), dtype=np.uint8))
    f = jax.jit(model.apply)
    return num_images / _timed(lambda: f(model.variables, x).block_until_ready(), repeats)


def attack_queries_per_s(model, config: AttackConfig, num_attacks: int, batch_size: int, seed: int = 0,
                         devices=None) -> float:
    """Queries per second of ``num_attacks`` non-targeted attacks that run every generation."""
    h, w = model.input_size
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_attacks, h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, model.num_classes, num_attacks)
    cfg = AttackConfig(**{**vars(config), "early_stop": "none"})

    def run(s):
        return attack(model, images, labels, config=cfg, seed=s, batch_size=batch_size, devices=devices,
                      progress=False)

    run(seed)  # compile
    t = time.perf_counter()
    result = run(seed + 1)
    elapsed = time.perf_counter() - t
    return float(result.queries.sum()) / elapsed


def run(model, config: AttackConfig, batch_size: int | None = None, num_attacks: int | None = None,
        repeats: int = 3) -> dict:
    """Both measurements for one model; returns a JSON-ready dict."""
    devices = jax.local_devices()
    b = batch_size or default_batch_size(config.popsize, 10**9, len(devices), devices[0].platform)
    n = num_attacks or b
    fwd = forward_queries_per_s(model, b * config.popsize, repeats)
    att = attack_queries_per_s(model, config, n, b)
    return {
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
        "forward_queries_per_s": round(fwd, 1),
        "attack_queries_per_s": round(att, 1),
        "attack_overhead": round(1 - att / fwd, 4),
    }
