"""The random-search baseline of Table VII on a classifier with a known answer."""

import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.paper import random_search
from tests import synthetic as syn


def test_records_are_true_and_reproducible():
  images = syn.noisy_images(4)
  labels, ids = np.zeros(4, int), np.array([10, 11, 12, 13])
  recs = list(random_search.records(syn.red_pixel, images, labels, ids, trials=50, seed=0))
  assert [r["id"] for r in recs] == ids.tolist()
  for i, r in enumerate(recs):
    adv = np.asarray(perturb.apply(images[i:i + 1], np.asarray([r["perturbation"]])))
    probs = np.asarray(syn.red_pixel(adv))[0]
    assert r["success"] == (probs.argmax() != 0) and r["predicted"] == probs.argmax()
    assert r["true_prob"] == pytest.approx(probs[0], rel=1e-5) and 1 <= r["queries"] <= 50
    assert r["target"] is None and r["pixels"] == 1
  # Keys depend on (seed, id) only: another batching draws the same pixels.
  again = list(random_search.records(syn.red_pixel, images, labels, ids, trials=50, seed=0, batch_images=1))
  assert again == recs


def test_first_success_is_reported_with_its_query_count():
  # Only pixel HOT matters; with enough trials one lands on it red enough, and the
  # record's queries count the trials up to that one.
  images = syn.grey_images(1)
  (r,) = random_search.records(syn.red_strip, images, [0], [0], trials=500, seed=1)
  assert r["success"]
  x, y = r["perturbation"][0][:2]
  assert y == syn.HOT[1] and abs(x - syn.HOT[0]) <= 1
  keys = random_search.attack_keys(1, [0], [-1])
  px = perturb.random_perturbations(keys, 500, 1, syn.H, syn.W)[0]
  hits = np.flatnonzero(np.asarray(syn.red_strip(perturb.apply(images, px))).argmax(-1) == 1)  # [500] images
  assert r["queries"] == hits[0] + 1 and px[hits[0]].tolist() == r["perturbation"]
