"""Pixel subsets: every subset of a k-pixel success, evaluated against known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.analysis import pixel_subsets as ps
from tests import synthetic as syn

RED = [syn.HOT[0], syn.HOT[1], 255, 0, 0]
NEXT = [syn.HOT[0] + 1, syn.HOT[1], 255, 0, 0]  # the pixel right of HOT, red
GREY = [1, 6, 128, 128, 128]  # a pixel no classifier here watches


def two_red(x):
  """Two classes; class 1 only when both HOT and its right neighbour are red
  (one red pixel leaves its logit at -5)."""
  r = syn.redness(x) + syn.redness(x, syn.HOT[0] + 1)
  return jax.nn.softmax(jnp.stack([jnp.zeros_like(r), 10.0 * r - 15.0], axis=-1), axis=-1)


def test_subsets_are_every_non_empty_subset_by_size():
  m = ps.subsets(3)
  assert m.shape == (7, 3) and len({tuple(r) for r in m}) == 7 and m.any(1).all()
  assert m.sum(1).tolist() == [1, 1, 1, 2, 2, 2, 3] and m[-1].all()
  assert ps.subsets(5).shape == (31, 5)
  with pytest.raises(ValueError, match="k must be >= 1"):
    ps.subsets(0)


def test_a_subset_writes_only_its_pixels_in_order():
  """Left-out tuples leave the image as if absent, repeated positions included
  (the later kept tuple wins)."""
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (1, syn.H, syn.W, 3), dtype=np.uint8)
  pert = np.array([[2, 3, 10, 20, 30], [2, 3, 40, 50, 60], [5, 1, 70, 80, 90], [2, 3, 1, 2, 3]], np.int32)
  masks = ps.subsets(4)
  got = np.asarray(perturb.apply(np.repeat(image, len(masks), 0), ps.subset_perturbations(pert, masks)))
  for mask, img in zip(masks, got):
    want = image[0].copy()
    for x, y, *rgb in pert[mask]:
      want[y, x] = rgb
    np.testing.assert_array_equal(img, want)
  with pytest.raises(ValueError, match="at least one pixel"):
    ps.subset_perturbations(pert, np.zeros((1, 4), bool))


def test_minimal_subsets_match_the_known_boundaries():
  images = syn.grey_images(3)
  # One red pixel at HOT suffices (wherever it stands); a 3-pixel perturbation whose
  # red HOT is overwritten by a later grey tuple at HOT fails, its red pixel alone not.
  pert = np.array([[GREY, RED, [0, 7, 0, 255, 0]],
                   [RED, GREY, GREY],
                   [RED, GREY, [syn.HOT[0], syn.HOT[1], 128, 128, 128]]], np.int32)
  res = ps.evaluate(syn.red_pixel, images, pert, [0, 0, 0], [1, None, 1])
  assert res.minimal_size.tolist() == [1, 1, 1] and res.success[:, -1].tolist() == [True, True, False]
  assert [np.flatnonzero(res.masks[i]).tolist() for i in res.minimal_subset] == [[1], [0], [0]]
  np.testing.assert_array_equal(res.success[2], res.masks[:, 0] & ~res.masks[:, 2])
  # Exactly the subsets holding the red pixel succeed (4 of 7), non-targeted too.
  np.testing.assert_array_equal(res.success[0], res.masks[:, 1])
  np.testing.assert_array_equal(res.success[1], res.masks[:, 0])
  # Two pixels needed: only subsets holding both red pixels succeed.
  two = ps.evaluate(two_red, syn.grey_images(1), np.array([[RED, GREY, NEXT]]), [0], [1])
  assert two.minimal_size.tolist() == [2] and np.flatnonzero(two.masks[two.minimal_subset[0]]).tolist() == [0, 2]
  np.testing.assert_array_equal(two.success[0], two.masks[:, 0] & two.masks[:, 2])
  # The wrong target: red reaches class 1, not 2; no subset succeeds.
  wrong = ps.evaluate(syn.red_pixel, images[:1], pert[:1], [0], [2])
  assert wrong.minimal_size.tolist() == [0] and wrong.minimal_subset.tolist() == [-1]

  s = ps.summary(res)
  assert s["records"] == 3 and s["reproduced"] == 2 and s["minimal_size_counts"] == {"1": 3, "2": 0, "3": 0}
  assert s["one_pixel_suffices"] == 3 and s["need_all"] == 0 and s["mean_minimal_size"] == 1.0
  # Size 1: 3 of the 9 one-pixel subsets succeed; size 2: 2 + 2 + 1 of 9; size 3: 2 of 3 full sets.
  shares = s["subset_success_share_by_size"]
  assert (shares["1"], shares["2"], shares["3"]) == pytest.approx((3 / 9, 5 / 9, 2 / 3))
  rows = ps.outputs(res, [4, 5, 6], ("a", "b", "c"), {"model": "m"}).json["pixel_subsets_summary.json"]["records"]
  assert [(r["id"], r["minimal_size"], r["minimal_pixels"], r["full_set_succeeds"], r["succeeding_subsets"])
          for r in rows] == [(4, 1, [1], True, 4), (5, 1, [0], True, 4), (6, 1, [0], False, 2)]


def test_successful_records_keep_multi_pixel_successes_only():
  recs = [{"success": True, "perturbation": [RED, GREY]}, {"success": False, "perturbation": [RED, GREY]},
          {"success": True, "perturbation": [RED]}]
  assert ps.successful_records(recs) == recs[:1]
