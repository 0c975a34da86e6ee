"""Open questions: sweep configs at a fixed budget, histories, imbalance and geometry statistics."""

import numpy as np
import pytest

from onepixel_jax.analysis import open_questions as openq
from onepixel_jax.attack import AttackConfig
from tests import synthetic as syn
from tests.synthetic import record


def test_sweep_configs_share_the_budget():
  cfgs = openq.sweep_configs(openq.SIZES, 1600)
  assert [c.popsize for c in cfgs] == [50, 100, 200, 400, 800, 1600]
  assert [c.generations for c in cfgs] == [31, 15, 7, 3, 1, 0]
  assert all(c.max_queries == 1600 for c in cfgs)
  assert all(c.F == 0.5 and c.early_stop == "paper" for c in cfgs)  # the paper's otherwise
  with pytest.raises(ValueError, match="smaller than the population"):
    openq.sweep_configs([3200], 1600)


def test_generation_curves():
  cur = openq.generation_curves([record(0), record(2), record(None)])
  assert cur["success"] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
  assert cur["late_share"][:3] == [0.5, 0.5, 0.0]


def test_population_sweep_runs_every_size_within_budget():
  images = syn.noisy_images(2)
  by = openq.population_sweep(syn.red_pixel, images, [0, 0], [0, 1], sizes=(8, 32), budget=32,
                              base=AttackConfig(early_stop="misclassify"))
  assert sorted(by) == [8, 32]
  for p, res in by.items():
    assert len(res) == 2 and (res.queries <= 32).all() and (res.popsize == p).all() and res.ids.tolist() == [0, 1]
  s = openq.sweep_summary(by, [8, 16, 32])
  assert [r["generations"] for r in s["rows"]] == [3, 0] and len(s["paired"]) == 2


def test_imbalance_statistics():
  # 4 images of class 0, 4 of class 1, 3 classes; success is easy 0 -> 1, never 1 -> 0.
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  clean = np.tile([0.7, 0.2, 0.1], (8, 1))
  clean[4:] = [0.05, 0.9, 0.05]
  success = np.zeros((8, 3))
  success[:4, 1] = 1
  success[:2, 2] = 1
  imb = openq.imbalance(success, labels, clean)
  assert imb["success"][0, 1] == 1 and imb["success"][1, 0] == 0 and imb["success"][0, 2] == 0.5
  assert np.isnan(imb["success"][0, 0]) and np.isnan(imb["success"][2]).all()
  assert imb["attacks"][0, 1] == 4 and imb["attacks"][2].sum() == 0
  assert imb["margin"][0, 1] == pytest.approx(np.log(0.7 / 0.2))
  assert imb["confusion"][1, 0] == pytest.approx(0.05)
  assert imb["from_rate"][0] == pytest.approx(0.75) and imb["to_rate"][0] == 0
  assert imb["pair_vs_margin"]["n"] == 4 and imb["pair_vs_margin"]["rho"] < 0


def test_random_reach_and_targeted_success():
  reach, best = openq.random_reach(syn.red_pixel, syn.noisy_images(2), [0, 0], candidates=300)
  assert reach.shape == (2, 3) and not reach[:, 0].any()
  assert best.shape == (2, 3) and (best <= 1).all()
  recs = [dict(record(0), id=5, target=1), dict(record(None), id=5, target=2), dict(record(0), id=6, target=2)]
  got = openq.targeted_success(recs, [5, 6], 3)
  assert np.isnan(got[0, 0]) and got[0, 1:].tolist() == [1.0, 0.0] and got[1, 2] == 1.0


def test_geometry_correlations():
  pairs = [{"original": a, "adversarial": b, "count": 1, "flip_distance": f, "width_distance": w}
           for a, b, f, w in [(0, 1, 10.0, 5.0), (0, 2, 50.0, 20.0), (1, 0, 90.0, 40.0), (1, 2, 70.0, None)]]
  ps = np.array([[np.nan, 0.9, 0.5], [0.1, np.nan, 0.3], [np.nan] * 3])
  geo = openq.geometry(pairs, ps, [0.7, 0.2, None], [0.1, 0.9, None])
  assert geo["pair_success_vs_flip"]["rho"] == pytest.approx(-1.0) and geo["pair_success_vs_flip"]["n"] == 4
  assert geo["pair_success_vs_width"]["n"] == 3
  assert geo["class_flip_distance"][:2] == [30.0, 80.0]


def test_imbalance_graded_signal_and_corner_source(tmp_path):
  labels = np.array([0, 0, 1])
  clean = np.array([[0.8, 0.15, 0.05], [0.6, 0.3, 0.1], [0.1, 0.85, 0.05]])
  best = np.array([[0.9, 0.1, 0.01], [0.7, 0.4, 0.05], [0.2, 0.8, 0.02]])
  imb = openq.imbalance(np.zeros((3, 3)), labels, clean, best=best)
  assert imb["best"][0, 1] == pytest.approx(0.25) and np.isnan(imb["best"][0, 0])
  assert imb["attack_best_vs_margin"]["n"] == 6 and imb["attack_best_vs_margin"]["rho"] < 0
  pred = np.zeros((2, 4, 4, 8), np.int16)
  pred[1] = 1  # image 1 keeps its label everywhere but one corner
  pred[1, 2, 3, 5] = 2
  np.savez(tmp_path / "corners.npz", predicted=pred, labels=np.array([0, 1]), ids=np.array([7, 9]),
           max_prob=np.full((2, 3), 0.5, np.float32))
  success, got_best, ids = openq.corner_success(tmp_path / "corners.npz", 3)
  assert success.tolist() == [[0, 0, 0], [0, 0, 1]] and ids.tolist() == [7, 9] and got_best.shape == (2, 3)
