"""Attack engine: known answers on synthetic classifiers, reproducibility, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import onepixel_jax as op

from tests.synthetic import HOT, H, W, assert_same, three_class, two_class, two_class_numpy
from tests.synthetic import random_images as images

SMALL = op.AttackConfig(popsize=100, generations=40, early_stop="misclassify")


def test_paper_defaults():
  c = op.AttackConfig()
  assert (c.pixels, c.popsize, c.generations, c.F, c.crossover, c.strategy, c.early_stop) == (
      1, 400, 100, 0.5, None, "rand1", "paper")
  assert c.max_queries == 40_400


def test_finds_the_known_pixel():
  im = images()
  r = op.attack(two_class, im, np.zeros(len(im), int), config=SMALL, progress=False)
  assert r.success.all()
  assert (r.perturbation[:, 0, :2] == HOT).all()
  adv = r.adversarial_images(im)
  assert adv.dtype == np.uint8
  assert ((adv != im).any(-1).sum(axis=(1, 2)) <= 1).all()
  probs = np.asarray(two_class(adv))
  np.testing.assert_array_equal(probs.argmax(1), r.predicted)
  np.testing.assert_allclose(probs[:, 1], r.adversarial_prob, rtol=1e-5)
  np.testing.assert_allclose(probs[:, 0], r.true_prob, rtol=1e-5)
  # Early stop at the first misclassification: fewer queries than the budget.
  assert (r.queries == SMALL.popsize * (r.generations + 1)).all()
  assert (r.queries < SMALL.max_queries).all()


def test_targeted_attack_reaches_target_and_histories_are_monotone():
  im = images(4, seed=1)
  cfg = op.AttackConfig(popsize=100, generations=40)  # paper's stop: target > 0.9
  r = op.attack(three_class, im, np.zeros(4, int), targets=np.full(4, 2), config=cfg, progress=False)
  assert r.success.all() and (r.predicted == 2).all()
  assert ((r.target_prob > 0.9) | (r.generations == 40)).all(), "stops only at the paper's threshold or the budget"
  np.testing.assert_allclose(r.target_prob, r.adversarial_prob)
  for fh, g, pt, ph, pred in zip(r.fitness_history, r.generations, r.target_prob, r.predicted_history, r.predicted):
    seen = fh[: g + 1]
    assert np.isfinite(seen).all() and np.isnan(fh[g + 1:]).all()
    assert (np.diff(seen) <= 0).all(), "greedy selection never worsens the best fitness"
    assert seen[-1] == pytest.approx(-pt, rel=1e-5)
    assert ph[g] == pred and (ph[g + 1:] == -1).all()


def test_no_early_stop_runs_every_generation():
  im = images(3)
  cfg = op.AttackConfig(popsize=16, generations=5, early_stop="none")
  r = op.attack(two_class, im, np.zeros(3, int), config=cfg, progress=False)
  assert (r.generations == 5).all() and (r.queries == 16 * 6).all()


def test_batch_size_does_not_change_results():
  im = images(7)
  labels = np.zeros(7, int)
  cfg = op.AttackConfig(popsize=16, generations=6)
  a = op.attack(two_class, im, labels, config=cfg, batch_size=1, progress=False)
  b = op.attack(two_class, im, labels, config=cfg, batch_size=16, progress=False)
  c = op.attack(two_class, im, labels, config=cfg, batch_size=3, steps_per_sync=5, progress=False)
  assert_same(a, b)
  assert_same(a, c)


def test_results_depend_on_seed_id_and_target_only():
  im = images(6)
  labels = np.zeros(6, int)
  cfg = op.AttackConfig(popsize=16, generations=4)
  full = op.attack(two_class, im, labels, config=cfg, progress=False)
  # Resuming a subset (as experiments do after a kill) reproduces the same attacks.
  part = op.attack(two_class, im[3:], labels[3:], config=cfg, ids=np.arange(3, 6), progress=False)
  np.testing.assert_array_equal(part.perturbation, full.perturbation[3:])
  other = op.attack(two_class, im, labels, config=cfg, seed=1, progress=False)
  assert not np.array_equal(other.perturbation, full.perturbation)


def test_numpy_callable_works():
  im = images(3)
  r = op.attack(two_class_numpy, im, np.zeros(3, int), config=SMALL, progress=False)
  assert r.success.all() and (r.perturbation[:, 0, :2] == HOT).all()


def test_streaming_records_are_json_ready():
  import json
  im = images(3)
  recs = list(op.attack_iter(two_class, im, np.zeros(3, int), config=SMALL))
  assert sorted(r["index"] for r in recs) == [0, 1, 2]
  json.dumps(recs)
  assert recs[0]["target"] is None and recs[0]["target_prob"] is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(images=np.zeros((2, H, W, 3), np.float32)), "images must be raw uint8"),
    (dict(images=np.zeros((2, 3, H, W), np.uint8)), r"NHWC"),
    (dict(images=np.zeros((H, W, 3), np.uint8)), r"NHWC"),
    (dict(labels=np.array([0, 2])), r"labels must be in \[0, 2\)"),
    (dict(labels=np.array([0])), r"labels must have shape \[2\]"),
    (dict(targets=np.array([1, 5])), r"targets must be in \[0, 2\)"),
    (dict(targets=np.array([1, 0])), "target equals the true label"),
    (dict(predict=lambda x: jnp.ones((x.shape[0], 3)) / 3.0 * jnp.array([1, 1, np.nan])), "NaN or inf"),
    (dict(predict=lambda x: jnp.ones((x.shape[0] + 1, 2)) / 2), r"returned shape \(3, 2\)"),
    (dict(predict=lambda x: jnp.ones((x.shape[0],))), "returned shape"),
    (dict(predict=lambda x: jnp.full((x.shape[0], 2), 3.0)), "apply a softmax"),
    (dict(predict="model"), "predict must be a callable"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
])
def test_bad_inputs_raise_clear_errors(kwargs, match):
  args = dict(predict=two_class, images=images(2), labels=np.zeros(2, int), targets=None)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match) as e:
    op.attack(args.pop("predict"), args.pop("images"), args.pop("labels"), config=SMALL, progress=False, **args)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,match", [
    (dict(pixels=0), "pixels must be an integer >= 1"),
    (dict(popsize=3), "popsize must be an integer >= 4"),
    (dict(generations=-1), "generations"),
    (dict(F=0.0), "F must be"),
    (dict(crossover=1.5), "crossover"),
    (dict(strategy="rand2"), "strategy"),
    (dict(dither=(0.9, 0.5)), "dither"),
    (dict(early_stop="never"), "early_stop"),
])
def test_bad_config_raises(kwargs, match):
  with pytest.raises(ValueError, match=match):
    op.AttackConfig(**kwargs)


def test_nan_mid_attack_is_reported_after_delivering_finished_attacks():
  # One slot, attacks of two steps each (initial population + 1 generation): attack 0
  # finishes at step 2, attack 1 at step 4; from step 5 on (attack 2) predict returns NaN.
  steps = {"n": 0}

  def flaky(x):
    p = two_class_numpy(x)
    if isinstance(x, np.ndarray) and len(x) == cfg.popsize:  # an attack step (the validation probe has 3 images)
      steps["n"] += 1
      if steps["n"] >= 5:
        p[:] = np.nan
    return p

  cfg = op.AttackConfig(popsize=8, generations=1, early_stop="none")
  im, labels = images(3), np.zeros(3, int)
  delivered = []
  with pytest.raises(ValueError, match=r"NaN or inf during the attack \(2 finished attacks were already delivered\)"):
    for rec in op.attack_iter(flaky, im, labels, config=cfg, batch_size=1, steps_per_sync=1):
      delivered.append(rec)
  assert [r["index"] for r in delivered] == [0, 1]
  # What was delivered is each finished attack's true outcome: its perturbation, evaluated again.
  for r in delivered:
    adv = np.asarray(op.perturb.apply(im[r["index"]], np.asarray(r["perturbation"])))
    p = two_class_numpy(adv[None])[0]
    assert r["true_prob"] == pytest.approx(p[0], rel=1e-5) and r["predicted"] == p.argmax()
    assert r["queries"] == 2 * cfg.popsize and r["generations"] == 1


def test_processes_split_the_queue_and_agree_with_one_process(monkeypatch):
  im = images(5)
  labels = np.zeros(5, int)
  cfg = op.AttackConfig(popsize=16, generations=3)
  whole = op.attack(two_class, im, labels, config=cfg, progress=False)
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  got = {}
  for rank in (0, 1):
    monkeypatch.setattr(jax, "process_index", lambda rank=rank: rank)
    for rec in op.attack_iter(two_class, im, labels, config=cfg):
      assert rec["index"] % 2 == rank
      got[rec["index"]] = rec["perturbation"]
  assert sorted(got) == [0, 1, 2, 3, 4]
  for i, p in got.items():
    assert p == whole.perturbation[i].tolist()


def test_default_batch_size_shrinks_for_multi_pixel_incremental_attacks():
  from onepixel_jax.attack import default_batch_size
  one = default_batch_size(400, 10**9, 1, "cpu", incremental=True)
  three = default_batch_size(400, 10**9, 1, "cpu", incremental=True, pixels=3)
  five = default_batch_size(400, 10**9, 1, "cpu", incremental=True, pixels=5)
  dense = default_batch_size(400, 10**9, 1, "cpu", incremental=False, pixels=5)
  assert (one, three, five, dense) == (10, 3, 2, 2)  # 4,096, 1,365 and 1,024 queries per pass
  assert default_batch_size(400, 1, 1, "cpu", incremental=True, pixels=5) == 1  # never more slots than attacks
  assert default_batch_size(400, 10**9, 2, "gpu", incremental=True, pixels=5) == 81  # accelerators keep theirs


def test_default_batch_size_caps_small_populations_on_cpu():
  """Random search's 16 queries per step would take 256 slots; a kill loses every attack in flight."""
  from onepixel_jax.attack import CPU_MAX_SLOTS, default_batch_size
  assert default_batch_size(16, 10**9, 1, "cpu", incremental=True) == CPU_MAX_SLOTS == 50
  assert default_batch_size(16, 10**9, 2, "cpu", incremental=True) == 100  # per device
  assert default_batch_size(16, 30, 1, "cpu", incremental=True) == 30
  assert default_batch_size(16, 10**9, 1, "gpu", incremental=True) == 1024  # accelerators are not capped


def test_a_second_call_reuses_the_compiled_loop(monkeypatch, tmp_path):
  """The same predict and settings reuse the jitted loop (no new trace or
  compilation) and give the same result; another setting, compiler option,
  or a rewritten learned prior makes a new one."""
  import importlib
  from onepixel_jax import compiler
  engine = importlib.import_module("onepixel_jax.attack")  # the module; op.attack is the function
  made = []
  real = engine._make_chunk
  monkeypatch.setattr(engine, "_make_chunk", lambda *a: made.append(a[0]) or real(*a))
  cfg = op.AttackConfig(popsize=8, generations=2, F=0.37, early_stop="none")  # an F no other test uses
  im, labels = images(3), np.zeros(3, int)
  first = op.attack(two_class, im, labels, config=cfg, progress=False)
  again = op.attack(two_class, im, labels, config=cfg, progress=False)
  assert len(made) == 1
  assert_same(first, again)
  op.attack(two_class, im, labels, config=op.AttackConfig(popsize=8, generations=2, F=0.38, early_stop="none"),
            progress=False)
  assert len(made) == 2
  with compiler.xla_defaults():  # other compiler options (on the CPU, where options are set)
    op.attack(two_class, im, labels, config=cfg, progress=False)
  assert len(made) == (3 if compiler.options("dense") else 2)
  # A learned prior rewritten under the same path is read again.
  from onepixel_jax import corner_prior
  import os
  prior = tmp_path / "prior.json"
  prior.write_text(corner_prior.DEFAULT_PATH.read_text())
  learned = op.AttackConfig(method="learned_corners", corner_prior=str(prior), query_budget=16, popsize=8)
  op.attack(two_class, im, labels, config=learned, progress=False)
  op.attack(two_class, im, labels, config=learned, progress=False)
  n = len(made)
  st = os.stat(prior)
  os.utime(prior, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
  op.attack(two_class, im, labels, config=learned, progress=False)
  assert len(made) == n + 1
