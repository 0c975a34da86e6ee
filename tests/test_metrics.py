"""The paper's metric definitions on hand-made records."""

import numpy as np
import pytest

from onepixel_jax.paper import metrics


def rec(id, label, target, success, prob=0.5, queries=400, distortion=100.0, predicted=None):
  if predicted is None:
    predicted = target if success and target is not None else label
  return dict(id=id, label=label, target=target, success=success, adversarial_prob=prob, queries=queries,
              distortion=distortion, predicted=predicted)


# Image 0 (cat=3): reaches dog and frog; image 1 (ship=8): reaches airplane; image 2 (dog=5): nothing.
RECORDS = (
    [rec(0, 3, t, t in (5, 6), prob=0.9 if t == 5 else 0.6, queries=800 if t in (5, 6) else 40400,
         distortion=120.0 if t in (5, 6) else 10.0) for t in range(10) if t != 3]
    + [rec(1, 8, t, t == 0, prob=0.7, queries=1200 if t == 0 else 40400) for t in range(10) if t != 8]
    + [rec(2, 5, t, False, prob=0.3) for t in range(10) if t != 5]
)


def test_targeted_success_is_per_pair():
  assert metrics.success_rate(RECORDS) == pytest.approx(3 / 27)


def test_nontargeted_success_from_targeted_runs():
  # Images 0 and 1 were sent to some other class; image 2 was not.
  assert metrics.nontargeted_from_targeted(RECORDS) == pytest.approx(2 / 3)


def test_confidence_averages_successes_only():
  assert metrics.confidence(RECORDS) == pytest.approx((0.9 + 0.6 + 0.7) / 3)
  assert np.isnan(metrics.confidence([r for r in RECORDS if not r["success"]]))


def test_targets_histogram():
  h = metrics.targets_histogram(RECORDS)
  assert h.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # one image each at 0, 1 and 2 targets
  assert h.sum() == 3


def test_pair_counts():
  m = metrics.pair_counts(RECORDS)
  expected = np.zeros((10, 10), int)
  expected[3, 5] = expected[3, 6] = expected[8, 0] = 1
  np.testing.assert_array_equal(m, expected)
  # Non-targeted records count toward the class they were sent to.
  nt = [rec(0, 3, None, True, predicted=5), rec(1, 3, None, False)]
  assert metrics.pair_counts(nt)[3, 5] == 1 and metrics.pair_counts(nt).sum() == 1


def test_evaluations_and_distortion():
  assert metrics.mean_queries(RECORDS) == pytest.approx((2 * 800 + 7 * 40400 + 1200 + 8 * 40400 + 9 * 400) / 27)
  assert metrics.mean_distortion(RECORDS) == pytest.approx((120 + 120 + 100) / 3)  # successes only
  assert metrics.mean_distortion(RECORDS, successful_only=False) == pytest.approx(
      (2 * 120 + 7 * 10 + 9 * 100 + 9 * 100) / 27)


def test_summary_of_nothing_is_nan_not_an_error():
  s = metrics.summary([])
  assert s["num_attacks"] == 0 and np.isnan(s["success_rate"])


def test_targeted_profile_known_answers():
  # Image 0 (cat=3) reaches dog at 95% (the early stop fired at 800 evaluations; one white pixel)
  # and frog at 60% after the whole budget (one pixel off the cube's corners); image 1 (ship=8) nothing.
  pixel = {5: [[1, 2, 255, 255, 255]], 6: [[3, 4, 0, 128, 255]]}
  recs = ([dict(rec(0, 3, t, t in (5, 6), queries=800 if t == 5 else 40400),
                target_prob={5: 0.95, 6: 0.6}.get(t, 0.1), perturbation=pixel.get(t, [[0, 0, 0, 0, 0]]))
           for t in range(10) if t != 3]
          + [dict(rec(1, 8, t, False, queries=40400), target_prob=0.2, perturbation=[[5, 5, 9, 9, 9]])
             for t in range(10) if t != 8])
  p = metrics.targeted_profile(recs, budget=40400)
  assert (p["images"], p["fooled"], p["attacks"], p["successes"]) == (2, 1, 18, 2)
  assert p["targets_per_image"] == 1.0 and p["targets_per_fooled_image"] == 2.0
  assert p["stopped_early"] == 1 and p["reached_threshold"] == 1 and p["max_target_prob"] == 0.95
  assert p["from_class"].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
  assert p["to_class"].tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
  # Only successful perturbations count: the failures' black pixel [0, 0, 0] is not one.
  assert (p["corner_pixels"], p["success_pixels"]) == (1, 2)
  # A stricter threshold: nothing reached it, though the attack still ended early.
  assert metrics.targeted_profile(recs, budget=40400, threshold=0.99)["reached_threshold"] == 0
  # The clean true-class probabilities' medians: the fooled image 0, the unfooled image 1.
  assert "clean_true_prob_fooled" not in p
  q = metrics.targeted_profile(recs, budget=40400, clean_true_prob={0: 0.55, 1: 0.97})
  assert (q["clean_true_prob_fooled"], q["clean_true_prob_not_fooled"]) == (0.55, 0.97)
  # An image without a probability makes its median unknown, not a median of the others.
  q = metrics.targeted_profile(recs, budget=40400, clean_true_prob={0: 0.55})
  assert q["clean_true_prob_fooled"] == 0.55 and np.isnan(q["clean_true_prob_not_fooled"])


def test_clean_true_prob_summary_known_answers():
  # Non-targeted records: images 0 and 2 fooled, 1 and 3 not.
  recs = [rec(i, 3, None, i in (0, 2)) for i in range(4)]
  c = metrics.clean_true_prob_summary(recs, {0: 0.3, 1: 0.9, 2: 0.5, 3: 0.8})
  assert c["clean_true_prob_median"] == pytest.approx(0.65) and c["clean_true_prob_mean"] == pytest.approx(0.625)
  assert c["clean_true_prob_fooled"] == pytest.approx(0.4) and c["clean_true_prob_not_fooled"] == pytest.approx(0.85)
