"""Shared fixtures. Before JAX starts, this points its persistent compilation
cache at one temporary folder for the whole run (unless JAX_COMPILATION_CACHE_DIR
is already set): the entry-point tests start fresh Python processes that compile
the same functions again, and pytest-xdist's workers inherit the folder, so each
function is compiled once per run. Cached executables are XLA's own output for
the same program and options, so no result changes.

It also compiles without LLVM's optimisation passes
(``--xla_backend_optimization_level=0`` in ``XLA_FLAGS``, inherited by the
entry points' processes): the suite is mostly XLA compiling tiny programs, and
an attack loop compiled ~2x faster that way (5.6 -> 2.6 s; the methods and
incremental modules 251 -> 193 s). The programs are the same HLO; LLVM's passes
change speed, not IEEE results. ``ONEPIXEL_TEST_XLA_OPT=1`` tests fully
optimised code instead.

On GPUs, JAX computes float32 matrix products and convolutions in
TensorFloat-32 by default: on an H200 the dense and incremental paths then
differed by 5e-4 in AllConv's logits, against the 1e-5 the equality tests
allow. The tests check arithmetic, not that default, so off the CPU they run
at full float32 (``JAX_DEFAULT_MATMUL_PRECISION=float32``, inherited by the
entry points' processes); on the CPU nothing changes."""
import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="onepixel_jax_test_xla_cache_")
  atexit.register(shutil.rmtree, _cache, True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
if os.environ.get("ONEPIXEL_TEST_XLA_OPT") != "1" and "xla_backend_optimization_level" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax
import numpy as np
import pytest

if jax.default_backend() != "cpu" and "JAX_DEFAULT_MATMUL_PRECISION" not in os.environ:
  os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "float32"
  jax.config.update("jax_default_matmul_precision", "float32")
from PIL import Image

from tests.helpers import cifar10_path


@pytest.fixture
def key():
  return jax.random.PRNGKey(0)


@pytest.fixture
def cifar10_tarball():
  p = cifar10_path()
  if p is None:
    pytest.skip("CIFAR-10 tarball not found: set ONEPIXEL_CIFAR10 or place ../shared/data/cifar10-jpeg.tar.gz")
  return p


@pytest.fixture(scope="session")
def setup(tmp_path_factory):
  """A random-weights AllConv checkpoint and an image folder labelled with its
  own predictions, so every image is 'correctly classified' and attacked."""
  from onepixel_jax import models
  d = tmp_path_factory.mktemp("job")
  module = models.create("allconv")
  variables = models.init_variables(module, jax.random.PRNGKey(0))
  ckpt = d / "allconv_random.msgpack"
  models.save_checkpoint(variables, ckpt, {"note": "random weights for tests"})
  model = models.load("allconv", ckpt)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
  pred = np.asarray(model.predict(images)).argmax(1)
  for i, (im, c) in enumerate(zip(images, pred)):
    p = d / "data" / "test" / models.CIFAR10_CLASSES[c]
    p.mkdir(parents=True, exist_ok=True)
    Image.fromarray(im).save(p / f"{i:04d}.png")
  return dict(ckpt=str(ckpt), data=str(d / "data"))


@pytest.fixture(scope="session")
def small_result():
  """``(config, AttackResult)`` of three small attacks on the synthetic two-class
  classifier: 2 pixels, every generation run; the third image is labelled 1, so
  its non-targeted attack succeeds by staying at class 0."""
  import onepixel_jax as op
  from tests import synthetic as syn
  cfg = op.AttackConfig(popsize=8, generations=3, pixels=2, early_stop="none")
  return cfg, op.attack(syn.two_class, syn.random_images(3), np.array([0, 0, 1]), config=cfg, progress=False)
