"""The exhaustive grid reference: the enumeration, known answers on the
synthetic classifiers, targeted mode, recall."""

import itertools

import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.analysis import corner_search, grid_reference as grid
from tests import synthetic as syn


def test_colour_grids():
  assert grid.colour_grid(3)[:, 0].tolist()[::9] == [0, 128, 255]
  assert sorted(set(grid.colour_grid(5).ravel().tolist())) == [0, 64, 128, 191, 255]
  assert len(grid.colour_grid(5)) == 125
  # Two levels are the corner search's extreme colours, in the same order.
  np.testing.assert_array_equal(grid.colour_grid(2), corner_search.CORNER_COLOURS)
  assert sorted(map(tuple, grid.colour_grid(2).tolist())) == sorted(itertools.product((0, 255), repeat=3))
  with pytest.raises(ValueError, match="levels must be >= 2"):
    grid.colour_grid(1)


def test_enumeration_covers_every_position_and_colour_once():
  px = grid.grid_perturbations(3, 4, grid.colour_grid(3))
  assert px.shape == (3 * 4 * 27, 1, 5)
  assert len({tuple(r) for r in px[:, 0].tolist()}) == len(px)
  assert px[:, 0].reshape(3, 4, 27, 5)[2, 1, 13].tolist() == [1, 2, *grid.colour_grid(3)[13]]


def _by_hand(predict, image, label, target, colours):
  """Every grid pixel's prediction, one perturbed image at a time."""
  out = {}
  for y in range(image.shape[0]):
    for x in range(image.shape[1]):
      for c in colours:
        adv = np.asarray(perturb.apply(image[None], np.array([[x, y, *c]])))
        p = np.asarray(predict(adv))[0]
        out[(x, y, *c)] = p
  return out


def test_search_equals_the_enumeration_non_targeted_and_targeted():
  images = syn.noisy_images(2)
  ref = grid.search(syn.red_pixel, images, [0, 0], targets=[-1, 2], levels=3)
  assert ref.queries == 8 * 8 * 27 and ref.predicted.shape == (2, 8, 8, 27)
  colours = grid.colour_grid(3)
  for i, target in enumerate([-1, 2]):
    want = _by_hand(syn.red_pixel, images[i], 0, target, colours)
    flips = {k for k, p in want.items() if (p.argmax() != 0 if target < 0 else p.argmax() == target)}
    got = {(x, y, *colours[c]) for y, x, c in zip(*np.nonzero(ref.flips[i]))}
    assert got == flips and flips  # the synthetic boundary is reachable in both modes
    # The best pixel: lowest true-class probability (non-targeted), highest target probability (targeted).
    score = {k: (want[k][0] if target < 0 else -want[k][target]) for k in flips}
    assert tuple(ref.best_pixel[i]) == min(score, key=score.get)
  # Targeted to class 2 needs blueness at (0, 0); non-targeted also succeeds at HOT (class 1).
  assert ref.vulnerable_positions.tolist() == [2, 1]
  low, cls = ref.position_map
  assert cls[0, syn.HOT[1], syn.HOT[0]] == 1 and low[0, syn.HOT[1], syn.HOT[0]] < 0.5


def test_recall_against_the_reference():
  images = syn.grey_images(3)
  ref = grid.search(syn.red_pixel, images, [0, 0, 1], levels=2)  # image 2 is "misclassified": any pixel flips
  assert ref.vulnerable.all()
  assert grid.recall([True, False, True], ref) == pytest.approx(2 / 3)
  assert (ref.best_pixel[ref.vulnerable] >= 0).all()
