import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from onepixel_jax import perturb

floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 40), st.data())
def test_to_perturbations_always_in_bounds(k, h, w, data):
  cand = data.draw(hnp.arrays(np.float32, (3, 5 * k), elements=floats))
  px = np.asarray(perturb.to_perturbations(cand, h, w))
  assert px.shape == (3, k, 5) and px.dtype == np.int32
  assert (px[..., 0] >= 0).all() and (px[..., 0] < w).all()
  assert (px[..., 1] >= 0).all() and (px[..., 1] < h).all()
  assert (px[..., 2:] >= 0).all() and (px[..., 2:] <= 255).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(2, 12), st.integers(2, 12), st.data())
def test_apply_changes_at_most_k_pixels(k, h, w, data):
  image = data.draw(hnp.arrays(np.uint8, (h, w, 3)))
  cand = data.draw(hnp.arrays(np.float32, (5 * k,), elements=floats))
  px = np.asarray(perturb.to_perturbations(cand, h, w))
  adv = np.asarray(perturb.apply(image, px))
  assert adv.dtype == np.uint8 and adv.shape == image.shape
  changed = np.argwhere((adv != image).any(-1))
  assert len(changed) <= k
  for y, x in changed:
    assert [x, y] in px[:, :2].tolist()
  # The last tuple naming a position wins.
  last = {}
  for x, y, r, g, b in px.tolist():
    last[(x, y)] = [r, g, b]
  for (x, y), rgb in last.items():
    assert adv[y, x].tolist() == rgb


def test_apply_broadcasts_population_over_images():
  images = np.zeros((2, 4, 4, 3), np.uint8)
  px = np.zeros((2, 3, 1, 5), np.int32)
  px[1, 2, 0] = [3, 1, 10, 20, 30]  # image 1, member 2: column 3, row 1
  out = np.asarray(perturb.apply(images[:, None], px))
  assert out.shape == (2, 3, 4, 4, 3)
  assert out[1, 2, 1, 3].tolist() == [10, 20, 30]
  assert np.count_nonzero(out) == 3  # the other members write black onto black


def test_init_candidates_follow_the_paper(key):
  c = np.asarray(perturb.init_candidates(key, 4000, 1, 32, 32))
  x, y, rgb = c[:, 0], c[:, 1], c[:, 2:]
  assert set(np.unique(x)) == set(range(32)) and set(np.unique(y)) == set(range(32))
  assert rgb.min() >= 0 and rgb.max() <= 255
  # N(128, 127) clipped to [0, 255]: ~15.7% mass at each clip boundary, median 128.
  assert abs(np.median(rgb) - 128) < 6
  assert 0.12 < (rgb == 255).mean() < 0.2 and 0.12 < (rgb == 0).mean() < 0.2


def test_distortion_known_answer():
  img = np.full((1, 4, 4, 3), 100, np.uint8)
  px = np.array([[[0, 0, 100, 160, 40]]])  # |0| + |60| + |60| over 3 channels
  np.testing.assert_allclose(perturb.distortion(img, px), [40.0])
