"""benchmark: the measurements are consistent with each other on a tiny network."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import benchmark, models
from onepixel_jax.attack import AttackConfig


class Tiny(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Conv(4, (3, 3))(x.astype(jnp.float32) / 255)
    return nn.Dense(3)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def tiny():
  module = Tiny()
  variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3), jnp.uint8), train=False)
  return models.Model("tiny", module, variables, ("a", "b", "c"), (8, 8))


def test_run_reports_consistent_rates(tiny):
  cfg = AttackConfig(popsize=4, generations=2)
  r = benchmark.run(tiny, cfg, batch_size=2, num_attacks=2, peak=False)
  assert (r["model"], r["popsize"], r["generations"], r["batch_size"]) == ("tiny", 4, 2, 2)
  assert r["images_per_forward"] == 2 * 4 and r["num_devices"] == len(jax.local_devices())
  assert r["incremental_queries_per_s"] is None  # no incremental inference for this module
  for key in ("forward_queries_per_s", "dense_queries_per_s", "attack_queries_per_s"):
    assert r[key] > 0, key
  assert r["attack_queries_per_s"] == r["dense_queries_per_s"]
  assert r["attack_overhead"] == pytest.approx(1 - r["dense_queries_per_s"] / r["forward_queries_per_s"], abs=1e-3)
  # One dense query is the conv (8 * 8 * 4 * 27 MACs) and the dense layer (256 * 3 MACs), twice for FLOPs.
  assert benchmark.dense_flops_per_query(tiny) == pytest.approx(2 * (8 * 8 * 4 * 27 + 256 * 3), rel=0.2)
  (row,) = [line for line in benchmark.markdown_table([r]).splitlines() if line.startswith("| tiny | ")]
  assert f"| {r['dense_queries_per_s']:.0f} |" in row


def test_attack_rate_counts_every_query(tiny, monkeypatch):
  times = iter([0.0, 2.0])
  monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(times))
  rate = benchmark.attack_queries_per_s(tiny, AttackConfig(popsize=4, generations=2), num_attacks=3, batch_size=2)
  assert rate == 3 * 4 * (2 + 1) / 2.0  # every attack runs all generations; 2 "seconds"
