"""Batched queries: equal to evaluating every perturbed image one by one."""

import numpy as np
import pytest

from onepixel_jax import perturb
from onepixel_jax.analysis import query
from tests import synthetic as syn


@pytest.mark.parametrize("batch_size", [1, 7, 512])
def test_probabilities_equal_the_perturbed_images_predictions(batch_size):
  images = syn.noisy_images(2)
  rng = np.random.default_rng(0)
  pert = np.stack([rng.integers(0, [8, 8, 256, 256, 256], (5, 2, 5)) for _ in range(2)]).astype(np.int32)
  got = query.probabilities(syn.red_pixel, images, pert, batch_size=batch_size)  # 10 queries: padded chunks
  want = np.stack([np.asarray(syn.red_pixel(np.asarray(perturb.apply(images[i:i + 1], pert[i][:, None]))[:, 0]))
                   for i in range(2)])
  assert got.shape == (2, 5, 3)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_probabilities_rejects_bad_shapes():
  with pytest.raises(ValueError, match="perturbations must be int"):
    query.probabilities(syn.red_pixel, syn.grey_images(2), np.zeros((3, 1, 1, 5), int))
