"""Sparse incremental inference (models/incremental.py) and the tiny-map patch
convolution (models/patchconv.py) equal dense inference to float tolerance."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from onepixel_jax import models, perturb
from onepixel_jax.attack import AttackConfig, attack
from onepixel_jax.models import incremental, patchconv

DN = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # NHWC, HWIO


@functools.lru_cache(maxsize=None)
def _model(name, seed=0):
  """Random weights (NumPy, scaled by fan-in; faster than Flax's init for
  VGG16's 20M parameters), with random batch-norm statistics and affine
  parameters so that every eval-mode batch norm does something."""
  module = models.create(name)
  shapes = jax.eval_shape(lambda: models.init_variables(module, jax.random.PRNGKey(0)))
  rng = np.random.default_rng(seed)

  def leaf(path, x):
    keys = jax.tree_util.keystr(path)
    if "kernel" in keys:
      v = rng.standard_normal(x.shape, np.float32) * np.float32(np.sqrt(2.0 / np.prod(x.shape[:-1])))
    elif "var" in keys:
      v = rng.uniform(0.5, 2.0, x.shape)
    elif "scale" in keys:
      v = 1 + rng.normal(0, 0.3, x.shape)
    else:  # biases, batch-norm offsets and means
      v = rng.normal(0, 0.3, x.shape)
    return jnp.asarray(v, jnp.float32)

  variables = jax.tree_util.tree_map_with_path(leaf, shapes)
  return models.Model(name, module, variables, models.CIFAR10_CLASSES, (32, 32))


def _pixels(rng, b, p, k, h=32, w=32):
  """int32[b, p, k, 5] with corners, edges and (k > 1) a repeated position."""
  px = np.stack([rng.integers(0, w, (b, p, k)), rng.integers(0, h, (b, p, k)),
                 *[rng.integers(0, 256, (b, p, k)) for _ in range(3)]], -1)
  edges = [(0, 0), (w - 1, h - 1), (w - 1, 0), (0, h - 1), (w // 2, 0), (0, h // 2 + 1), (w - 1, h - 2)]
  for i, xy in enumerate(edges[:p]):
    px[0, i, 0, :2] = xy
  if k > 1:
    px[1, 0, k - 1, :2] = px[1, 0, 0, :2]  # same pixel twice: the later tuple wins
    px[1, 1, 0, :2], px[1, 1, 1, :2] = (10, 20), (11, 21)  # diagonal neighbours
  return px.astype(np.int32)


# AllConv with 1 pixel and NiN with 3: the route tests below compare the same way (and windows_only()).
@pytest.mark.parametrize("name,k", [("allconv", 3), ("nin", 1), ("vgg16", 1), ("vgg16", 3),
                                    ("convsmall", 1), ("convsmall", 3)])
def test_incremental_equals_dense(name, k):
  model = _model(name)
  rng = np.random.default_rng(k)
  b, p = 2, 7
  clean = rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8)
  px = _pixels(rng, b, p, k)
  layers = incremental.describe(model.module)

  @jax.jit
  def both(variables, clean, px):
    images = perturb.apply(clean[:, None], px).reshape(b * p, 32, 32, 3)
    dense = model.logits(variables, images).reshape(b, p, -1)
    return incremental.logits_incremental(layers, variables, clean, px), dense

  got, dense = both(model.variables, clean, px)
  scale = float(jnp.abs(dense).max())
  assert scale > 0.1
  np.testing.assert_allclose(np.asarray(got), np.asarray(dense), rtol=0, atol=1e-5 * max(scale, 1.0))
  # The candidates differ from one another (the test is not trivially clean-vs-clean).
  assert float(jnp.abs(dense - dense[:, :1]).max()) > 1e-4


def test_window_sizes_follow_the_receptive_field():
  allconv = incremental.describe(models.create("allconv"))
  assert incremental.window_sizes(allconv, 1) == [(3, 3), (5, 5), (4, 4), (6, 6), (8, 8), (5, 5)] + ["dense"] * 4
  # k > 1: windows give way once they would cover 70% of the map (3 x 8x8 of 16x16: 75%) ...
  assert incremental.window_sizes(allconv, 3)[:5] == [(3, 3), (5, 5), (4, 4), (6, 6), "dense"]
  assert incremental.window_sizes(allconv, 3, dense_fraction=1.0)[:6] == [(3, 3), (5, 5), (4, 4), (6, 6), (8, 8), "dense"]
  with incremental.without_shortcuts("early_dense"):  # ... and without the shortcut, at 100%, as one pixel's
    assert incremental.window_sizes(allconv, 3)[:6] == [(3, 3), (5, 5), (4, 4), (6, 6), (8, 8), "dense"]
  assert incremental.default_dense_fraction(1) == 1.0 and incremental.default_dense_fraction(3) == 0.7
  nin = incremental.window_sizes(incremental.describe(models.create("nin")), 1)
  assert nin == [(5, 5)] * 3 + [(4, 4)] + [(8, 8)] * 3 + [(5, 5)] + [(7, 7)] * 3 + ["dense"]
  vgg = incremental.window_sizes(incremental.describe(models.create("vgg16")), 1)
  assert vgg[:7] == [(3, 3), (5, 5), (3, 3), (5, 5), (7, 7), (4, 4), (6, 6)] and set(vgg[7:]) == {"dense"}
  convsmall = incremental.window_sizes(incremental.describe(models.create("convsmall")), 1)
  assert convsmall == [(2, 2), (3, 3), "dense", "dense"]


def test_description_matches_the_module():
  """The per-layer descriptions run dense give the Flax modules' logits."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  for name in ("allconv", "nin", "vgg16", "convsmall"):
    model = _model(name)
    layers = incremental.describe(model.module)
    ref, got = jax.jit(lambda v, x: (model.logits(v, x), incremental.logits(layers, v, x)))(model.variables, images)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=0, atol=1e-5 * float(jnp.abs(ref).max()))


def test_supports_incremental_only_where_described():
  assert _model("allconv").supports_incremental

  class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
      return nn.Dense(10)(x.reshape(x.shape[0], -1).astype(jnp.float32) / 255)

  tiny = Tiny()
  variables = tiny.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 3), jnp.uint8), train=False)
  m = models.Model("tiny", tiny, variables, models.CIFAR10_CLASSES, (4, 4))
  assert not m.supports_incremental
  with pytest.raises(NotImplementedError):
    m.apply_incremental(variables, jnp.zeros((1, 4, 4, 3), jnp.uint8), jnp.zeros((1, 2, 1, 5), jnp.int32))


def test_old_pixels_names_warn_and_delegate(monkeypatch):
  model = _model("allconv")
  with pytest.warns(DeprecationWarning, match="supports_incremental"):
    assert model.supports_pixels
  calls = []
  monkeypatch.setattr(models.Model, "apply_incremental", lambda self, *a: calls.append(a) or "probs")
  with pytest.warns(DeprecationWarning, match="apply_incremental"):
    assert model.apply_pixels("variables", "clean", "perturbations") == "probs"
  assert calls == [("variables", "clean", "perturbations")]
  assert incremental.apply_pixels is incremental.apply_incremental  # the module-level alias


@pytest.mark.parametrize("shape", [
    # (N, H, Cin, F, kernel, stride, padding)
    (3, 2, 16, 8, 3, 1, "SAME"), (3, 1, 16, 8, 3, 1, "SAME"), (3, 4, 8, 8, 3, 2, "SAME"),
    (3, 5, 8, 4, 3, 2, "SAME"), (3, 4, 8, 8, 3, 1, "VALID"), (3, 2, 8, 8, 1, 1, "SAME"), (3, 7, 4, 4, 5, 1, "SAME"),
])
def test_patch_convolution_equals_xla(shape):
  n, hw, cin, f, k, s, pad = shape
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n, hw, hw, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, f)), jnp.float32)
  ref = lax.conv_general_dilated(x, w, (s, s), pad, dimension_numbers=DN)
  got = patchconv.conv_patches(x, w, (s, s), pad)
  assert got.shape == ref.shape
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=0, atol=1e-5 * float(jnp.abs(ref).max()))
  # The lax-compatible entry point (as flax.linen.Conv calls it) takes the patch route on tiny maps only.
  got2 = patchconv.conv_general_dilated(x, w, (s, s), pad, dimension_numbers=DN)
  np.testing.assert_allclose(np.asarray(got2), np.asarray(ref), rtol=0, atol=1e-5 * float(jnp.abs(ref).max()))


def test_vgg16_tiny_maps_take_the_patch_route_with_unchanged_results():
  """VGG16's tiny-map blocks lower to dots; its output equals plain XLA convolutions."""
  model = _model("vgg16")
  images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  lowered = jax.jit(model.logits).lower(model.variables, images)
  # 13 convolutions; those with 4x4 and 2x2 outputs (three each) run as matrix products.
  assert lowered.as_text().count("convolution(") == 7
  got = lowered.compile()(model.variables, images)
  old = patchconv.TINY_OUTPUT_PIXELS
  try:
    patchconv.TINY_OUTPUT_PIXELS = 0  # every convolution through XLA
    ref = jax.jit(model.logits)(model.variables, images)
  finally:
    patchconv.TINY_OUTPUT_PIXELS = old
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=0, atol=1e-5 * float(jnp.abs(ref).max()))


def test_attack_incremental_equals_dense():
  """Same perturbations and (to float tolerance) probabilities with and without
  incremental inference."""
  model = _model("allconv")
  rng = np.random.default_rng(3)
  images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  labels = np.asarray(model.predict(images)).argmax(1)
  cfg = AttackConfig(popsize=12, generations=3, early_stop="none")
  kw = dict(config=cfg, seed=0, batch_size=2, progress=False)
  assert model.supports_incremental
  inc = attack(model, images, labels, **kw)
  dense = attack(model, images, labels, incremental=False, **kw)
  np.testing.assert_array_equal(inc.perturbation, dense.perturbation)
  np.testing.assert_array_equal(inc.predicted, dense.predicted)
  np.testing.assert_allclose(inc.true_prob, dense.true_prob, rtol=0, atol=1e-6)
  np.testing.assert_allclose(inc.fitness_history, dense.fitness_history, rtol=0, atol=1e-6)


def _route_taken(monkeypatch, name, k, layer_fn, seed):
  """The names of the layers that ``incremental.<layer_fn>`` computes for
  ``k``-pixel candidates of ``name`` (edges, overlaps, repeats: ``_pixels``);
  inside windows_only() it computes none and is restored after; both routes
  equal the dense network."""
  model = _model(name)
  layers = incremental.describe(model.module)
  rng = np.random.default_rng(seed)
  clean = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  px = _pixels(rng, 2, 7, k)
  calls = []
  real = getattr(incremental, layer_fn)
  monkeypatch.setattr(incremental, layer_fn, lambda v, layer, *a: calls.append(layer.name) or real(v, layer, *a))
  # A new jit per call traces again (the switch is read at trace time); jitted, not op by op: faster.
  run = lambda: np.asarray(jax.jit(  # noqa: E731
      lambda v, c, x: incremental.logits_incremental(layers, v, c, x))(model.variables, clean, px))
  got = run()
  taken = list(calls)
  with incremental.windows_only():
    windows = run()
  assert calls == taken and incremental.SHORTCUTS == incremental.ALL_SHORTCUTS
  dense = np.asarray(model.logits(model.variables, perturb.apply(clean[:, None], px).reshape(14, 32, 32, 3)))
  np.testing.assert_allclose(got, dense.reshape(2, 7, -1), atol=1e-4)
  np.testing.assert_allclose(windows, dense.reshape(2, 7, -1), atol=1e-4)
  assert float(np.abs(dense - dense[:1]).max()) > 1e-4  # the candidates differ
  return taken


def test_one_pixel_convolutions_by_linearity_and_windows_only(monkeypatch):
  """k = 1 candidates take _conv_delta_layer through AllConv's stride-1 3x3
  convolutions (and only those); windows_only() turns it off."""
  # Not the stride-2 ones; ConvBN_6 is dense.
  taken = _route_taken(monkeypatch, "allconv", 1, "_conv_delta_layer", 5)
  assert taken == ["ConvBN_0", "ConvBN_1", "ConvBN_3", "ConvBN_4"]


def test_pointwise_convolutions_on_the_patches_and_windows_only(monkeypatch):
  """NiN's 1x1 convolutions take _pointwise_layer while they compute windows
  (3 pixels: the two of its first block; its second 5x5 convolution goes
  dense, its three windows covering 75% of the map), for k > 1 too;
  windows_only() turns it off."""
  taken = _route_taken(monkeypatch, "nin", 3, "_pointwise_layer", 6)
  assert taken == ["ConvBN_1", "ConvBN_2"]
