"""Exhaustive corner search: the enumeration, the maps, the random-order curve, DE comparison."""

import itertools
import math

import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.analysis import corner_search as corner
from tests import synthetic as syn
from tests.synthetic import record


def test_corner_colours_are_the_two_level_grid_in_binary_order():
  # The summary names the colours in this order (black, blue, green, cyan, red, magenta, yellow, white).
  assert corner.CORNER_COLOURS.tolist() == [[r, g, b] for r, g, b in itertools.product((0, 255), repeat=3)]
  assert corner.CORNER_COLOURS[1].tolist() == [0, 0, 255] and corner.CORNER_COLOURS[6].tolist() == [255, 255, 0]


def test_search_finds_exactly_the_vulnerable_corners():
  images = syn.noisy_images(2)
  cs = corner.search(syn.red_pixel, images, [0, 0], batch_size=100)  # 8*8*8 = 512, not a multiple of 100
  assert cs.queries == 512 and cs.predicted.shape == (2, 8, 8, 8)
  vul = cs.vulnerability
  # Class 1 needs redness r - (g + b) / 2 > 0.4 at HOT: red (1.0), magenta and yellow (0.5).
  assert vul[:, syn.HOT[1], syn.HOT[0]].tolist() == [3, 3]
  # Class 2 needs blueness > 0.4 at (0, 0): blue, cyan, magenta.
  assert vul[:, 0, 0].tolist() == [3, 3]
  mask = np.ones((8, 8), bool)
  mask[syn.HOT[1], syn.HOT[0]] = mask[0, 0] = False
  assert (vul[:, mask] == 0).all()
  assert cs.success.all()
  reach = cs.reachable(3)
  assert reach.tolist() == [[False, True, True]] * 2
  # Spot-check against evaluating the perturbed images one by one.
  rng = np.random.default_rng(0)
  for _ in range(5):
    i, y, x, c = rng.integers(2), rng.integers(8), rng.integers(8), rng.integers(8)
    adv = perturb.apply(images[i:i + 1], np.array([[[x, y, *corner.CORNER_COLOURS[c]]]]))
    p = np.asarray(syn.red_pixel(adv))[0]
    assert cs.predicted[i, y, x, c] == p.argmax()
    assert cs.true_prob[i, y, x, c] == pytest.approx(p[0], abs=1e-6)
    assert (cs.max_prob[i] >= p - 1e-6).all()


def test_random_order_success_is_exact():
  t = 8
  got = corner.random_order_success([2], t, [0, 1, 3, 6, 7, 8])
  miss = [math.comb(6, q) / math.comb(8, q) for q in (0, 1, 3, 6)]
  np.testing.assert_allclose(got, [1 - m for m in miss] + [1, 1])
  assert corner.random_order_success([0, 8], t, [1, 8]).tolist() == [0.5, 0.5]
  # Monte Carlo agreement on a bigger case.
  rng = np.random.default_rng(0)
  hits = [(rng.permutation(100)[:10] < 5).any() for _ in range(4000)]
  assert corner.random_order_success([5], 100, [10])[0] == pytest.approx(np.mean(hits), abs=0.03)


def test_compare_with_de_at_equal_budgets():
  cs = corner.search(syn.red_pixel, syn.noisy_images(2), [0, 0])
  recs = [record(0), record(2), record(None)]  # first success after 10 and 30 queries; one failure
  cmp = corner.compare(cs, recs, grid=[5, 10, 29, 30, 50, 60])
  assert cmp["de_max_queries"] == 50
  assert cmp["de"] == [0.0, pytest.approx(1 / 3), pytest.approx(1 / 3), pytest.approx(2 / 3),
                       pytest.approx(2 / 3), None]
  assert cmp["corner_exhaustive"] == 1.0
  assert cmp["corner_random_order"][-1] == pytest.approx(corner.random_order_success([6, 6], 512, [60])[0])


def test_de_landing_on_the_maps():
  cs = corner.search(syn.red_pixel, syn.noisy_images(1), [0])
  recs = [dict(record(0), perturbation=[[syn.HOT[0], syn.HOT[1], 255, 0, 7]]),
          dict(record(1), perturbation=[[4, 4, 255, 255, 0]]), dict(record(None), perturbation=[[0, 0, 0, 0, 0]])]
  land = corner.de_landing(cs, recs, {0: 0})
  assert land["count"] == 2 and land["on_vulnerable"] == 0.5
  assert land["base_rate"] == pytest.approx(2 / 64)
  assert land["channels_at_extreme"] == pytest.approx(5 / 6)
  assert land["points"] == [[0, syn.HOT[0], syn.HOT[1]], [0, 4, 4]]


def test_outputs_are_values_and_the_saved_search_loads_back(tmp_path):
  images = syn.noisy_images(2)
  cs = corner.search(syn.red_pixel, images, [0, 0])
  out = corner.outputs(cs, images, [3, 4], ("a", "b", "c"), [record(0), record(None)])
  assert set(out.figures) == {"vulnerability_maps", "corner_vs_de", "corner_pairs"}
  assert not list(tmp_path.iterdir())  # computing wrote nothing
  s = out.json["corner_summary.json"]
  assert s["corner_success"] == 1.0 and s["mean_adversarial_corners"] == 6
  assert s["de_success"] == 0.5 and [im["id"] for im in s["images"]] == [3, 4]
  np.savez_compressed(tmp_path / "corners.npz", **out.arrays["corners.npz"])
  again, ids = corner.load(tmp_path / "corners.npz")
  assert ids.tolist() == [3, 4]
  np.testing.assert_array_equal(again.vulnerability, cs.vulnerability)
