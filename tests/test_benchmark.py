"""benchmark: the measurements are consistent with each other on a tiny network."""

import dataclasses
import json
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import benchmark, models
from onepixel_jax.attack import AttackConfig
from onepixel_jax.models import incremental as inc


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


def test_run_derives_its_figures_from_the_measurements(tiny, monkeypatch):
  # Measured rates fixed (the attack itself is timed in the next test): what run() derives is a known answer.
  monkeypatch.setattr(benchmark, "forward_queries_per_s", lambda model, n, repeats: 200.0)
  rates = {False: 160.0, True: 640.0}
  # Incremental: 640 with every shortcut, 480 without one (ablated), 320 with windows only.
  every = len(inc.ALL_SHORTCUTS)
  monkeypatch.setattr(benchmark, "attack_queries_per_s", lambda model, cfg, n, b, incremental: (
      rates[incremental] if not incremental else {every: 640.0, every - 1: 480.0, 0: 320.0}[len(inc.SHORTCUTS)]))
  monkeypatch.setattr(benchmark, "peak_flops_per_s", lambda: (1e9, "test"))
  monkeypatch.setattr(type(tiny), "supports_incremental", property(lambda self: True))
  named = dataclasses.replace(tiny, name="allconv")  # Table VI has its evaluations per attack
  r = benchmark.run(named, AttackConfig(popsize=4, generations=2), batch_size=2, num_attacks=2,
                    ablate=("pointwise",))
  flops = benchmark.dense_flops_per_query(tiny)
  assert (r["batch_size"], r["images_per_forward"], r["num_devices"]) == (2, 8, len(jax.local_devices()))
  assert (r["dense_queries_per_s"], r["incremental_queries_per_s"], r["attack_queries_per_s"]) == (160, 640, 640)
  assert r["attack_overhead"] == 0.2 and r["incremental_speedup"] == 4.0
  assert (r["incremental_windows_queries_per_s"], r["shortcuts_speedup"]) == (320, 2.0)
  assert (r["incremental_without_pointwise_queries_per_s"], r["pointwise_speedup"]) == (480, 1.33)
  assert "delta_speedup" not in r  # only what was asked for
  assert inc.SHORTCUTS == inc.ALL_SHORTCUTS  # restored after the windows-only measurement
  assert r["dense_peak_fraction"] == round(160 * flops / 1e9, 3)
  assert r["table4_queries"] == 500 * 9 * 16_000 and r["table4_hours"] == round(500 * 9 * 16_000 / 640 / 3600, 1)
  (row,) = [line for line in benchmark.markdown_table([r]).splitlines() if line.startswith("| allconv | ")]
  assert "| 160 | 640 | 4.0x |" in row


def test_compare_xla_measures_every_path_with_the_defaults(tiny, monkeypatch):
  from onepixel_jax import compiler
  # Rates a quarter lower when compiled with XLA's defaults (compiler.enabled() False inside xla_defaults).
  scale = lambda r: r if compiler.enabled() else 0.75 * r  # noqa: E731
  monkeypatch.setattr(benchmark, "forward_queries_per_s", lambda model, n, repeats: scale(200.0))
  monkeypatch.setattr(benchmark, "attack_queries_per_s",
                      lambda model, cfg, n, b, incremental: scale(640.0 if incremental else 160.0))
  monkeypatch.setattr(type(tiny), "supports_incremental", property(lambda self: True))
  r = benchmark.run(tiny, AttackConfig(popsize=4, generations=2), batch_size=2, num_attacks=2, peak=False,
                    compare_xla=True)
  assert (r["forward_queries_per_s_xla_defaults"], r["dense_queries_per_s_xla_defaults"],
          r["incremental_queries_per_s_xla_defaults"]) == (150, 120, 480)
  assert r["incremental_queries_per_s"] == 640


def test_dense_flops_of_a_known_network(tiny):
  # The conv (8 * 8 * 4 * 27 MACs) and the dense layer (256 * 3 MACs), two FLOPs a MAC.
  assert benchmark.dense_flops_per_query(tiny) == pytest.approx(2 * (8 * 8 * 4 * 27 + 256 * 3), rel=0.2)


class _Lowered:
  """A stand-in for jax's Lowered: the HLO analysis as a GPU gave it (None), then the compiled one's."""

  def __init__(self, before, after):
    self.before, self.after = before, after

  def cost_analysis(self):
    return self.before

  def compile(self):
    return types.SimpleNamespace(cost_analysis=lambda: self.after)


def test_flops_fall_back_to_the_compiled_analysis():
  # On an H200 (jax 0.11.2) the lowered HLO's analysis was None and the benchmark crashed on it.
  assert benchmark.xla_flops(_Lowered(None, [{"flops": 6.0}])) == 6.0
  assert benchmark.xla_flops(_Lowered({"flops": 4.0}, None)) == 4.0  # CPU: the first answer is used
  assert benchmark.xla_flops(_Lowered(None, None)) is None
  assert benchmark.xla_flops(_Lowered([], {"bytes accessed": 8.0})) is None


def test_run_reports_rates_when_xla_counts_no_flops(tiny, monkeypatch):
  monkeypatch.setattr(benchmark, "forward_queries_per_s", lambda model, n, repeats: 200.0)
  monkeypatch.setattr(benchmark, "attack_queries_per_s", lambda model, cfg, n, b, incremental: 160.0)
  monkeypatch.setattr(benchmark, "peak_flops_per_s", lambda: (1e9, "test"))
  monkeypatch.setattr(benchmark, "xla_flops", lambda lowered: None)
  r = benchmark.run(tiny, AttackConfig(popsize=4, generations=2), batch_size=2, num_attacks=2)
  assert r["dense_queries_per_s"] == 160 and r["dense_gflops_per_query"] is None
  assert r["dense_peak_fraction"] is None and r["peak_gflops_per_s"] == 1.0
  json.dumps(r, allow_nan=False)  # stays valid JSON


def test_attack_rate_counts_every_query(tiny, monkeypatch):
  seen = []

  def fake_attack(model, images, labels, config, seed, batch_size, **kw):  # every attack runs its whole budget
    seen.append((config.early_stop, images.shape, batch_size, kw["incremental"]))
    return types.SimpleNamespace(queries=np.full(len(images), config.max_queries))

  monkeypatch.setattr(benchmark, "attack", fake_attack)
  times = iter([0.0, 2.0])
  monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(times))
  rate = benchmark.attack_queries_per_s(tiny, AttackConfig(popsize=4, generations=2), num_attacks=3, batch_size=2,
                                        incremental=False)
  assert rate == 3 * 4 * (2 + 1) / 2.0  # 3 attacks x 12 queries in 2 "seconds"
  # Compiled once untimed, then timed; never stopping early, on images of the model's size.
  assert seen == [("none", (3, 8, 8, 3), 2, False)] * 2


def test_train_rates_derive_from_the_timed_parts(monkeypatch):
  clock = [0.0]
  monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
  seconds = {"pipeline": 0.1, "augment": 0.05, "forward_backward": 0.8, "update": 0.05, "step": 1.0}

  def fake_variant(name, batch_size, tuned):  # the tuned step takes half the time per image
    scale = batch_size / 128 * (1 if tuned else 2)
    def tick(part):
      clock[0] += seconds[part] * scale
    return {"batch_size": batch_size, "tuned": tuned, "flops_per_step": 1e11 * batch_size / 128,
            "parts": {p: (lambda p=p: tick(p)) for p in seconds}}

  monkeypatch.setattr(benchmark, "_train_variant", fake_variant)
  monkeypatch.setattr(benchmark, "peak_flops_per_s", lambda: (2e11, "test"))
  before, before_128, after = benchmark.train_rates("allconv", repeats=2)
  assert (before["batch_size"], before_128["batch_size"], after["batch_size"]) == (256, 128, 128)
  assert before["xla_options"] == before_128["xla_options"] == {}
  assert after["xla_options"] == benchmark.compiler.options("train")
  assert before["step_images_per_s"] == before_128["step_images_per_s"] == 64.0
  assert after["step_images_per_s"] == 128.0
  assert after["forward_backward_images_per_s"] == 160.0 and after["pipeline_images_per_s"] == 1280.0
  assert after["end_to_end_images_per_s"] == round(128 / 1.1, 1)
  assert (before["step_speedup"], after["step_speedup"]) == (1.0, 2.0)
  # Against the untuned step at its own batch: the compilation's gain alone.
  assert (before_128["step_speedup_same_batch"], after["step_speedup_same_batch"]) == (1.0, 2.0)
  assert before["step_speedup_same_batch"] == 1.0
  assert after["step_peak_fraction"] == 0.5 and after["gflops_per_step"] == 100.0
  rows = benchmark.train_markdown_table([before, before_128, after]).splitlines()
  assert rows[2].startswith("| allconv | 256 | defaults |") and rows[4].endswith("| 2.00x | 2.00x |")


def test_product_functions_compute_the_three_products_of_a_training_step():
  rng = np.random.default_rng(0)
  x, w, g = (rng.normal(size=s).astype(np.float32) for s in ((12, 5), (5, 3), (12, 3)))
  want = {"forward": (x @ w, (x, w)), "weight_gradient": (x.T @ g, (x, g)),
          "input_gradient": (g @ w.T, (g, w))}
  for dtype, tol in (("float32", 1e-5), ("bfloat16", 3e-2)):
    fns = benchmark.product_functions()
    assert set(fns) == set(want)
    for name, (ref, args) in want.items():
      got = fns[name](*(jnp.asarray(a, dtype) for a in args))
      assert got.dtype == jnp.float32 and got.shape == ref.shape
      np.testing.assert_allclose(np.asarray(got), ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_product_rates_report_both_precisions_per_shape_and_product():
  recs = benchmark.product_rates(shapes=((256, 128, 64),), repeats=1)
  assert [r["product"] for r in recs] == ["forward", "weight_gradient", "input_gradient"]
  for r in recs:
    assert r["shape"] == [256, 128, 64] and r["float32_gflops_per_s"] > 0 and r["bfloat16_gflops_per_s"] > 0
    assert r["bfloat16_speedup"] == pytest.approx(r["bfloat16_gflops_per_s"] / r["float32_gflops_per_s"], rel=0.05, abs=0.01)  # both rounded


def test_ablating_an_unknown_shortcut_fails_before_measuring(tiny):
  with pytest.raises(ValueError, match="unknown setting 'conv' to ablate"):
    benchmark.run(tiny, AttackConfig(popsize=4, generations=2), batch_size=2, num_attacks=2, ablate=("conv",))


def test_convolution_routes_compute_the_same_convolution():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 6, 6, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 4, 5)), jnp.float32)
  xn, wn = np.asarray(x, np.float64), np.asarray(w, np.float64)
  ref = sum(np.einsum("nhwc,cf->nhwf", xn[:, i:i + 4, j:j + 4], wn[i, j]) for i in range(3) for j in range(3))
  for tuned in (False, True):
    fns = benchmark.convolution_functions(tuned=tuned)
    assert set(fns) == set(benchmark.CONV_ROUTES)
    for name, f in fns.items():
      np.testing.assert_allclose(np.asarray(f(x, w)), ref, rtol=1e-5, atol=1e-4, err_msg=name)


def test_convolution_rates_report_every_route_with_both_option_sets():
  recs = benchmark.convolution_rates(shapes=((4, 3, 8, 16, 2),), repeats=1)
  assert [r["options"] for r in recs] == ["defaults", "tuned"]
  assert recs[0]["xla_options"] == {} and recs[1]["xla_options"] == benchmark.compiler.options("incremental")
  for r in recs:
    assert (r["output"], r["kernel"], r["channels"], r["batch"]) == ([4, 4], 3, [8, 16], 2)
    rates = [r[f"{m}_gflops_per_s"] for m in benchmark.CONV_ROUTES]
    assert min(rates) > 0 and r["max_abs_difference"] < 1e-4
    assert r["xla_speedup"] == pytest.approx(rates[0] / max(rates[1:]), rel=0.1, abs=0.1)  # rounded rates
