"""XLA compiler options per compiled function (onepixel_jax.compiler): the
tuned compilations compute what XLA's default ones do, to float tolerance."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import compiler, models, train
from onepixel_jax.models import incremental, patchconv
from onepixel_jax.models.cifar import ConvBN, preprocess


def test_options_per_kind_and_switch(monkeypatch):
  if jax.default_backend() == "cpu":
    assert compiler.options("dense") == compiler.options("incremental") != {}
    # Training adds YNNPACK's reductions (batch norm's sums) to its dot products.
    ynn = "xla_cpu_experimental_ynn_fusion_type"
    assert compiler.options("train")[ynn].split(",") == [compiler.options("dense")[ynn],
                                                         "LIBRARY_FUSION_TYPE_REDUCE"]
    assert compiler.options("incremental_wide_delta") == {}
  assert compiler.options("train", backend="tpu") == {}
  monkeypatch.setenv("ONEPIXEL_XLA_OPTIONS", "0")
  assert compiler.options("train") == {}
  with pytest.raises(ValueError, match="unknown compiled-function kind 'infer'"):
    compiler.options("infer")


def _allconv():
  module = models.create("allconv")
  return module, models.init_variables(module, jax.random.PRNGKey(0))


def test_tuned_forward_pass_equals_default():
  module, variables = _allconv()
  x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
  f = lambda v, x: module.apply(v, x, train=False)
  tuned = np.asarray(compiler.jit(f, "dense")(variables, x))
  plain = np.asarray(compiler.jit(f, "dense", tuned=False)(variables, x))
  np.testing.assert_allclose(tuned, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,pixels,kind", [
    ("nin", 1, "incremental_wide_delta"),  # its 5x5 convolutions by linearity
    ("nin", 3, "incremental"), ("allconv", 1, "incremental"), ("vgg16", 1, "incremental"),
])
def test_incremental_kind_per_network_and_pixels(name, pixels, kind):
  assert incremental.compiler_kind(incremental.describe(models.create(name)), pixels) == kind


def test_tuned_incremental_pass_equals_default():
  module, variables = _allconv()
  layers = incremental.describe(module)
  rng = np.random.default_rng(3)
  clean = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  px = np.stack([rng.integers(0, 32, (2, 6, 3)), rng.integers(0, 32, (2, 6, 3)),
                 *[rng.integers(0, 256, (2, 6, 3)) for _ in range(3)]], -1).astype(np.int32)
  f = lambda v, c, x: incremental.apply_incremental(layers, v, c, x)  # noqa: E731
  tuned = np.asarray(compiler.jit(f, "incremental")(variables, clean, px))
  plain = np.asarray(compiler.jit(f, "incremental", tuned=False)(variables, clean, px))
  np.testing.assert_allclose(tuned, plain, rtol=1e-4, atol=1e-6)
  assert np.abs(tuned - tuned[:, :1]).max() > 1e-6  # the candidates differ


class Small(nn.Module):
  """AllConv's ingredients (a 3x3 ConvBN, a 1x1 convolution run as a dot
  product, global pooling), small enough to compile fast."""

  @nn.compact
  def __call__(self, images, train: bool):
    x = ConvBN(16, 3, stride=2)(preprocess(images), train)
    x = ConvBN(16, 1)(x, train)
    return jnp.mean(nn.Conv(10, (1, 1))(x), axis=(1, 2))


def test_tuned_training_step_equals_default():
  module = Small()
  config = train.default_config("allconv")
  state = train.create_state(module, jax.random.PRNGKey(0), train.make_optimizer(config, 10))
  rng = np.random.default_rng(1)
  x = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
  y = rng.integers(0, 10, 8).astype(np.int32)
  step = lambda s: train.train_step(s, x, y, jax.random.PRNGKey(2), num_classes=10,
                                    label_smoothing=0.2, pad=2)
  (s1, m1), (s2, m2) = compiler.jit(step, "train")(state), compiler.jit(step, "train", tuned=False)(state)
  np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5),
                         s1.params, s2.params)


def test_tuned_forward_passes_take_xla_convolutions_for_1x1_kernels(monkeypatch):
  """In a tuned forward pass on CPU (YNNPACK dot fusion) a 1x1 convolution on
  an 8x8 map is XLA's own; with XLA's defaults, inside patch_products() or in
  a training step it is the patch product (a dot), as before; a 3x3 one on a
  4x4 map is the patch product in all. All agree."""
  calls, seen = [], []
  real = patchconv.conv_patches
  monkeypatch.setattr(patchconv, "conv_patches", lambda *a, **k: calls.append(a[1].shape[0]) or real(*a, **k))
  dn = ("NHWC", "HWIO", "NHWC")

  def f(x, w1, w3):
    seen.append(compiler.tracing_options())
    y = patchconv.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn)     # 8x8, 1x1
    return patchconv.conv_general_dilated(y[:, :4, :4], w3, (1, 1), "SAME", dimension_numbers=dn)  # 4x4, 3x3

  rng = np.random.default_rng(4)
  args = (rng.standard_normal((3, 8, 8, 8), np.float32), rng.standard_normal((1, 1, 8, 6), np.float32),
          rng.standard_normal((3, 3, 6, 5), np.float32))
  cpu = jax.default_backend() == "cpu"
  tuned = np.asarray(compiler.jit(f, "dense")(*args))
  assert (calls, seen[-1]) == ([3] if cpu else [1, 3], compiler.options("dense"))
  outs = []
  for kind, tuned_ in (("dense", False), ("train", True)):
    calls.clear()
    outs.append(np.asarray(compiler.jit(f, kind, tuned=tuned_)(*args)))
    assert calls == [1, 3]
  calls.clear()
  with compiler.patch_products():
    outs.append(np.asarray(compiler.jit(f, "dense")(*args)))
  assert calls == [1, 3] and seen[-1] == compiler.options("dense") and compiler.tracing_options() == {}
  for out in outs:
    np.testing.assert_allclose(tuned, out, rtol=1e-5, atol=1e-5)


def test_tuned_training_steps_take_im2col_for_strided_convolutions(monkeypatch):
  """In a tuned training step on CPU a stride-2 3x3 convolution is one im2col
  product; with XLA's defaults and in forward passes it is XLA's own. Values
  and gradients agree."""
  methods = []
  real = patchconv.conv_patches
  monkeypatch.setattr(patchconv, "conv_patches",
                      lambda *a, **k: methods.append(k.get("method", "shifted")) or real(*a, **k))
  dn = ("NHWC", "HWIO", "NHWC")
  rng = np.random.default_rng(5)
  x, w = rng.standard_normal((2, 16, 16, 4), np.float32), rng.standard_normal((3, 3, 4, 6), np.float32)
  r = rng.standard_normal((2, 8, 8, 6), np.float32)
  loss = lambda x, w: jnp.sum(patchconv.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn) * r)
  grads = jax.value_and_grad(loss, argnums=(0, 1))
  tuned = compiler.jit(grads, "train")(x, w)
  assert methods == (["im2col"] if jax.default_backend() == "cpu" else [])
  for kind, tuned_ in (("train", False), ("dense", True)):
    methods.clear()
    other = compiler.jit(grads, kind, tuned=tuned_)(x, w)
    assert methods == []
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4), tuned, other)
