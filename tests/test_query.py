"""Batched queries: equal to evaluating every perturbed image one by one."""

import jax.numpy as jnp
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


class _IncrementalRedPixel:
  """A "model" whose incremental inference is the synthetic red-pixel
  classifier on the perturbed images, counting the blocks it is given."""
  variables = None
  supports_incremental = True

  def __init__(self):
    self.blocks = []

  def apply(self, variables, x):
    return syn.red_pixel(x)

  def apply_incremental(self, variables, clean, pix):  # [B, H, W, 3], [B, P, k, 5] -> [B, P, C]
    self.blocks.append(pix.shape[:2])
    b, p = pix.shape[:2]
    imgs = perturb.apply(jnp.repeat(clean[:, None], p, axis=1).reshape(b * p, *clean.shape[1:]),
                         pix.reshape(b * p, *pix.shape[2:]))
    return syn.red_pixel(imgs).reshape(b, p, -1)


@pytest.mark.parametrize("batch_size,block", [(4, (1, 4)), (10, (2, 5)), (4096, (3, 5))])
def test_incremental_blocks_equal_the_dense_evaluation(batch_size, block):
  images = syn.noisy_images(3)
  rng = np.random.default_rng(1)
  pert = np.stack([rng.integers(0, [8, 8, 256, 256, 256], (5, 1, 5)) for _ in range(3)]).astype(np.int32)
  model = _IncrementalRedPixel()
  got = query.probabilities(model, images, pert, batch_size=batch_size)  # 3 x 5: padded blocks
  assert model.blocks and set(model.blocks) == {block}  # B images x P perturbations, compiled once
  dense = query.probabilities(model, images, pert, batch_size=batch_size, incremental=False)
  np.testing.assert_allclose(got, dense, rtol=1e-6)
  np.testing.assert_allclose(dense, query.probabilities(syn.red_pixel, images, pert), rtol=1e-6)


def test_a_model_queried_again_is_not_traced_again():
  images = syn.noisy_images(2)
  pert = np.zeros((2, 3, 1, 5), np.int32)
  model = _IncrementalRedPixel()
  first = query.probabilities(model, images, pert)
  traced = len(model.blocks)  # apply_incremental runs only while being traced
  again = query.probabilities(model, images[::-1], pert)  # another image, as analysis.verify does per image
  np.testing.assert_allclose(again, first[::-1], rtol=1e-6)
  assert traced == 1 and len(model.blocks) == 1
  query.probabilities(_IncrementalRedPixel(), images, pert)  # another model compiles its own
  assert len(model.blocks) == 1
