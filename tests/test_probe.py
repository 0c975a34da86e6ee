"""Boundary probing: the path's steps, every class at every step, flip and width estimates."""

import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.analysis import probe
from tests import synthetic as syn

RED = [syn.HOT[0], syn.HOT[1], 255, 0, 0]


def test_colour_path_ends_at_original_and_adversarial():
  t, col = probe.colour_path([10, 200, 30], [250, 0, 30], steps=8, beyond=0.5)
  assert len(t) == 8 + 1 + 4 and t[0] == 0 and t[8] == 1 and np.allclose(np.diff(t), 1 / 8)
  assert col.shape == (13, 3) and col.dtype == np.int32
  assert col[0].tolist() == [10, 200, 30] and col[8].tolist() == [250, 0, 30]
  assert col.min() >= 0 and col.max() <= 255 and col[-1].tolist() == [255, 0, 30]  # clipped beyond
  t0, col0 = probe.colour_path([10, 200, 30], [250, 0, 30], steps=8, beyond=0)
  assert len(t0) == 9 and (col0 == col[:9]).all()


def test_probe_steps_clean_first_adversarial_last_every_class_logged():
  images = syn.noisy_images(3)
  pert = np.array([[RED], [[1, 6, 255, 0, 255]], [[syn.HOT[0], syn.HOT[1], 0, 0, 0]]], np.int32)
  p = probe.probe(syn.red_pixel, images, [0, 0, 0], pert, steps=10, beyond=0, radius=1, batch_size=7)
  s = len(p.t)
  assert s == 11 and p.adversarial_step == s - 1
  first = np.asarray(perturb.apply(images, p.colour_pixels[:, 0]))
  last = np.asarray(perturb.apply(images, p.colour_pixels[:, -1]))
  np.testing.assert_array_equal(first, images)  # the first step is the clean image
  np.testing.assert_array_equal(last, np.asarray(perturb.apply(images, pert)))  # the last the adversarial one
  # Every class at every step, equal to evaluating each step's image on its own.
  assert p.colour_probs.shape == (3, s, 3) and np.isfinite(p.colour_probs).all()
  np.testing.assert_allclose(p.colour_probs.sum(-1), 1, atol=1e-5)
  for i in range(3):
    stepped = np.asarray(perturb.apply(np.repeat(images[i:i + 1], s, 0), p.colour_pixels[i]))
    np.testing.assert_allclose(p.colour_probs[i], np.asarray(syn.red_pixel(stepped)), atol=1e-6)
  assert p.adv_labels.tolist() == [1, 0, 0]
  # Position probes: (2r+1)^2 offsets, the centre is the adversarial image.
  assert p.position_probs.shape == (3, 9, 3) and p.position_valid.all()
  centre = np.flatnonzero((p.offsets == 0).all(1))[0]
  np.testing.assert_allclose(p.position_probs[:, centre], p.colour_probs[:, -1], atol=1e-6)


def test_beyond_keeps_the_adversarial_step():
  images = syn.grey_images(1, value=100)
  pert = np.array([[[syn.HOT[0], syn.HOT[1], 180, 60, 60]]])
  p = probe.probe(syn.red_pixel, images, [0], pert, steps=4, beyond=1.0, radius=0)
  assert len(p.t) == 9 and p.t[p.adversarial_step] == 1
  np.testing.assert_array_equal(p.colour_pixels[0, 4], pert[0])
  assert p.colour_pixels[0, -1, 0, 2:].tolist() == [255, 20, 20]


def test_flip_point_and_width_match_the_known_boundary():
  # Grey 0 -> red 255 at HOT: redness(t) = t, class 1 wins at t* = OFFSET / SLOPE,
  # and the share p1 / (p0 + p1) goes from 0.1 to 0.9 over 2 ln 9 / SLOPE.
  images = np.zeros((1, syn.H, syn.W, 3), np.uint8)
  p = probe.probe(syn.red_pixel, images, [0], np.array([[RED]]), steps=200, beyond=0, radius=1)
  est = probe.estimates(p)
  assert est["flip_t"][0] == pytest.approx(syn.OFFSET / syn.SLOPE, abs=0.01)
  assert est["flip_class"][0] == 1
  assert est["width_t"][0] == pytest.approx(2 * np.log(9) / syn.SLOPE, abs=0.02)
  assert est["colour_distance"][0] == pytest.approx(255)
  assert est["flip_distance"][0] == pytest.approx(255 * syn.OFFSET / syn.SLOPE, abs=3)
  assert est["neighbour_share"][0] == 0  # only the exact pixel matters


def test_neighbour_share_follows_the_adversarial_region():
  images = np.zeros((2, syn.H, syn.W, 3), np.uint8)
  p = probe.probe(syn.red_strip, images, [0, 0], np.array([[RED], [RED]]), steps=4, radius=1)
  est = probe.estimates(p)
  assert est["neighbour_share"].tolist() == [2 / 8, 2 / 8]  # left and right stay in the strip
  m = probe.position_map(p)["still_adversarial"]
  assert m.shape == (3, 3) and m[1].tolist() == [1, 1, 1] and m[0].sum() == m[2].sum() == 0


def test_positions_outside_the_image_are_marked_invalid():
  images = np.zeros((1, syn.H, syn.W, 3), np.uint8)
  p = probe.probe(syn.red_pixel, images, [0], np.array([[[0, 0, 255, 0, 0]]]), steps=2, radius=1)
  assert p.position_valid[0].sum() == 4  # the corner pixel has 3 neighbours plus itself
  assert np.isnan(p.position_probs[0, ~p.position_valid[0]]).all()


def test_by_pair_aggregates_successes_only():
  images = syn.grey_images(4, value=0)
  pert = np.array([[RED], [RED], [[0, 0, 0, 0, 255]], [[2, 2, 9, 9, 9]]])
  p = probe.probe(syn.red_pixel, images, [0, 0, 0, 0], pert, steps=20)
  pairs = probe.by_pair(p)
  assert [(q["original"], q["adversarial"], q["count"]) for q in pairs] == [(0, 1, 2), (0, 2, 1)]
  assert len(pairs[0]["mean_adv_prob"]) == len(p.t)
  assert pairs[0]["flip_t"] == pytest.approx(0.4, abs=0.03)


def test_outputs_say_which_probes_are_successes_and_which_best_candidates(tmp_path):
  images = syn.noisy_images(3)
  weak = [syn.HOT[0], syn.HOT[1], 140, 128, 128]  # a little red: class 1 stays far away, even at t = 1.5
  pert = np.array([[RED], [RED], [weak]])
  p = probe.probe(syn.red_pixel, images, [0, 0, 0], pert, steps=10)
  assert p.success.tolist() == [True, True, False]
  out = probe.outputs(p, [7, 8, 9], ("a", "b", "c"), examples=3, note="synthetic")
  assert not list(tmp_path.iterdir())  # computing wrote nothing
  assert set(out.figures) == {"probe_curves", "probe_pairs", "probe_positions"}
  summary = out.json["probe_summary.json"]
  assert [q["probed"] for q in summary["probes"]] == ["success", "success", "best candidate"]
  assert summary["summary"]["successful"] == 2 and summary["summary"]["best_candidates"] == 1
  best = summary["probes"][2]
  # At t = 1 the red channel is 140: logits (0, 10 * 12 / 255 - 4, -4) (pixel (0, 0) is grey).
  e = np.exp([0, 10 * 12 / 255 - 4, -4])
  p0, p1, _ = e / e.sum()
  assert best["runner_up"] == 1 and best["margin"] == pytest.approx(p0 - p1, abs=1e-4)
  assert best["flip_t"] is None and summary["summary"]["best_candidate_flips_beyond"] == 0.0
  assert summary["probes"][0]["margin"] < 0  # a success is past the boundary
  kinds = [e["success"] for e in out.figures["probe_curves"][1]["examples"]]
  assert kinds == [True, True, False]


def test_select_probes_successes_and_the_best_candidate_of_each_unfooled_image():
  def rec(id, success, true_prob, x=0):
    return {"id": id, "success": success, "true_prob": true_prob, "perturbation": [[x, 0, 0, 0, 0]]}
  recs = [rec(1, True, 0.2), rec(1, True, 0.2), rec(1, False, 0.6, x=1),  # image 1 fooled (twice the same pixel)
          rec(2, False, 0.7), rec(2, False, 0.4, x=2), rec(2, False, 0.5, x=3)]  # image 2 never fooled
  got = probe.select(recs)
  assert [(r["id"], r["success"], r["true_prob"]) for r in got] == [(1, True, 0.2), (2, False, 0.4)]
  assert probe.select(recs, best_candidates=False) == [recs[0]]


def test_several_pixels_move_together():
  images = syn.noisy_images(1)
  pert = np.array([[RED, [0, 0, 0, 0, 255]]])
  p = probe.probe(syn.red_pixel, images, [0], pert, steps=4, beyond=0, radius=1)
  assert p.colour_pixels.shape == (1, 5, 2, 5) and p.original_colours.shape == (1, 2, 3)
  np.testing.assert_array_equal(perturb.apply(images, p.colour_pixels[:, 0]), images)
  np.testing.assert_array_equal(p.colour_pixels[0, -1], pert[0])
  assert p.position_valid[0].sum() == 4  # (0, 0) limits the shifts to dx, dy >= 0
