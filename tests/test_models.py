"""Architectures (shapes, exact parameter counts), the Model object and load()."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import models
from onepixel_jax.models.base import Model


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def _allconv_params():
  k = lambda cin, cout, s: cin * cout * s * s
  kernels = (k(3, 96, 3) + k(96, 96, 3) * 2 + k(96, 192, 3) + k(192, 192, 3) * 3
             + k(192, 192, 1) + k(192, 10, 1) + 10)
  bn = 2 * (96 * 3 + 192 * 5)                     # scale + bias after 8 convs
  return kernels + bn, 2 * (96 * 3 + 192 * 5)     # (params, batch_stats)


def _nin_params():
  k = lambda cin, cout, s: cin * cout * s * s
  chans = [(3, 192, 5), (192, 160, 1), (160, 96, 1), (96, 192, 5), (192, 192, 1),
           (192, 192, 1), (192, 192, 3), (192, 192, 1)]
  kernels = sum(k(*c) for c in chans) + k(192, 10, 1) + 10
  bn = 2 * sum(c[1] for c in chans)
  return kernels + bn, bn


def _vgg16_params():
  convs, cin = 0, 3
  bn = 0
  for v in models.cifar.VGG16_CONVS:
    if v != "M":
      convs += cin * v * 9
      bn += 2 * v
      cin = v
  fc = 512 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 10 + 10
  return convs + bn + fc, bn


EXPECTED = {
    "allconv": (1_370_986, 2_496),
    "nin": (968_394, 2_816),
    "vgg16": (19_986_378, 8_448),
}


def test_expected_counts_match_the_paper_tables():
  assert EXPECTED["allconv"] == _allconv_params()
  assert EXPECTED["nin"] == _nin_params()
  assert EXPECTED["vgg16"] == _vgg16_params()


@pytest.mark.parametrize("name", sorted(EXPECTED))  # the CIFAR-10 networks; ImageNet ones: test_imagenet_models.py
def test_parameter_counts_and_output_shape(name):
  module = models.create(name)
  variables = jax.eval_shape(lambda: models.init_variables(module, jax.random.key(0)))
  assert set(variables) == {"params", "batch_stats"}
  assert (_count(variables["params"]), _count(variables["batch_stats"])) == EXPECTED[name]
  out = jax.eval_shape(lambda v, x: module.apply(v, x, train=False), variables,
                       jax.ShapeDtypeStruct((3, 32, 32, 3), jnp.uint8))
  assert out.shape == (3, 10) and out.dtype == jnp.float32


def test_allconv_feature_map_sizes():
  # The seventh layer is a stride-1 valid conv: 8x8 -> 6x6 (PAPER.md's slip note).
  module = models.create("allconv")
  variables = jax.eval_shape(lambda: models.init_variables(module, jax.random.key(0)))
  _, inter = jax.eval_shape(
      lambda v, x: module.apply(v, x, train=False, capture_intermediates=True),
      variables, jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8))
  shapes = [inter["intermediates"][f"ConvBN_{i}"]["__call__"][0].shape[1:3]
            for i in range(8)]
  assert shapes == [(32, 32), (32, 32), (16, 16), (16, 16), (16, 16), (8, 8), (6, 6), (6, 6)]


@pytest.fixture(scope="module")
def allconv():
  module = models.create("allconv")
  variables = models.init_variables(module, jax.random.key(1))
  return Model("allconv", module, variables, models.CIFAR10_CLASSES, (32, 32))


def test_model_probabilities_from_uint8(allconv):
  x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  p = allconv.predict(x)
  assert p.shape == (2, 10) and p.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(p).sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.asarray(p) >= 0)
  # apply is pure and jittable with variables as an argument.
  p2 = jax.jit(allconv.apply)(allconv.variables, jnp.asarray(x))
  np.testing.assert_allclose(p, p2, rtol=1e-5, atol=1e-6)
  assert allconv.num_classes == 10 and allconv.input_size == (32, 32)


def test_load_unknown_name():
  with pytest.raises(ValueError, match="valid names: allconv, nin, vgg16"):
    models.load("resnet")


def test_load_missing_bundled_checkpoint(monkeypatch, tmp_path):
  monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
  with pytest.raises(ValueError, match="no bundled checkpoint for 'nin'.*experiments.train"):
    models.load("nin")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_checkpoint_round_trip(allconv, tmp_path, dtype):
  path = tmp_path / "allconv.msgpack"
  digest = models.save_checkpoint(allconv.variables, path, {"note": "test"}, dtype=dtype)
  meta = json.loads(path.with_suffix(".json").read_text())
  assert meta["sha256"] == digest == models.sha256_file(path)
  assert meta["note"] == "test" and meta["dtype"] == np.dtype(dtype).name
  loaded = models.load("allconv", path)
  leaves = jax.tree_util.tree_leaves(loaded.variables)
  assert all(l.dtype == jnp.float32 for l in leaves)
  ref = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype).astype(np.float32),
                               allconv.variables)
  jax.tree_util.tree_map(np.testing.assert_array_equal, ref, loaded.variables)


def test_bundled_checkpoint_from_weights_dir(allconv, tmp_path, monkeypatch):
  models.save_checkpoint(allconv.variables, tmp_path / "allconv.msgpack")  # float16 on disk
  monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
  loaded = models.load("allconv")  # no path: the bundled weights, i.e. those in WEIGHTS_DIR
  want = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float16).astype(np.float32), allconv.variables)
  jax.tree_util.tree_map(np.testing.assert_array_equal, want, loaded.variables)
  assert loaded.class_names == models.CIFAR10_CLASSES and loaded.class_names[3] == "cat"


# --------------------------------------------------------------------------
# predict composes with JAX transformations (the bundled, trained AllConv).
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
  from onepixel_jax import data
  images, labels = data.load_cifar10("samples")
  return models.load("allconv"), images[:4], labels[:4]


def test_predict_under_jit_equals_predict(trained):
  model, images, _ = trained
  want = np.asarray(model.predict(images))
  np.testing.assert_allclose(np.asarray(jax.jit(model.predict)(images)), want, rtol=1e-5, atol=1e-6)
  # Inside a larger jitted function, on a traced uint8 batch.
  top = jax.jit(lambda x: model.predict(x).argmax(-1))(jnp.asarray(images))
  np.testing.assert_array_equal(np.asarray(top), want.argmax(-1))


def test_predict_under_vmap_equals_predict(trained):
  model, images, _ = trained
  want = np.asarray(model.predict(images))
  got = jax.vmap(model.predict)(images[:, None])  # each image a batch of one
  assert got.shape == (4, 1, 10)
  np.testing.assert_allclose(np.asarray(got)[:, 0], want, rtol=1e-5, atol=1e-6)


def test_grad_of_a_class_probability_matches_finite_differences(trained):
  model, images, labels = trained
  x = images[:1].astype(np.float32)
  y = int(labels[0])
  p_true = lambda im: model.predict(im)[0, y]  # noqa: E731
  g = np.asarray(jax.grad(p_true)(x))
  assert g.shape == x.shape and np.isfinite(g).all() and np.abs(g).max() > 0
  # Float images in [0, 255] are read as uint8 ones are.
  assert float(p_true(x)) == pytest.approx(float(model.predict(images[:1])[0, y]), rel=1e-5)
  # The directional derivative along the gradient's own direction, by central differences.
  v = g / np.linalg.norm(g)
  h = 0.5
  fd = (float(p_true(x + h * v)) - float(p_true(x - h * v))) / (2 * h)
  assert fd == pytest.approx(float(np.sum(g * v)), rel=0.05)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_checkpoint_fails_sha256(allconv, tmp_path, damage):
  path = tmp_path / "allconv.msgpack"
  models.save_checkpoint(allconv.variables, path)
  data = bytearray(path.read_bytes())
  if damage == "flip":
    data[len(data) // 2] ^= 0xFF
  else:
    data = data[: len(data) // 3]
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match=r"allconv\.msgpack is corrupt or truncated: sha256"):
    models.load("allconv", path)


def test_unreadable_checkpoint_without_metadata(tmp_path):
  path = tmp_path / "junk.msgpack"
  path.write_bytes(b"\x00\x01not a msgpack checkpoint")
  with pytest.raises(ValueError, match="junk.msgpack"):
    models.load("allconv", path)
  with pytest.raises(FileNotFoundError, match="missing.msgpack"):
    models.load("allconv", tmp_path / "missing.msgpack")


def test_checkpoint_of_another_architecture(allconv, tmp_path):
  path = tmp_path / "allconv.msgpack"
  models.save_checkpoint(allconv.variables, path)
  with pytest.raises(ValueError, match="does not match the architecture"):
    models.load("nin", path)


def test_bundled_weights_if_present():
  for name in models.names():
    if (models.WEIGHTS_DIR / f"{name}.msgpack").is_file():
      meta = json.loads((models.WEIGHTS_DIR / f"{name}.json").read_text())
      assert meta["sha256"] == models.sha256_file(models.WEIGHTS_DIR / f"{name}.msgpack")
      for key in ("test_accuracy", "samples_accuracy", "command", "hardware",
                  "training_seconds", "trained_on"):
        assert key in meta, key
