"""CIFAR-10 loaders: foolbox samples, image folders / tarballs (synthetic), TFDS."""

import importlib.util
import io
import pathlib
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from onepixel_jax import data

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_samples_match_file_names():
  images, labels = data.load_cifar10("samples")
  assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (20,) and labels.dtype == np.int32
  names = sorted(f.name for f in data.samples.samples_dir().iterdir()
                 if re.match(r"^cifar10_\d+_\d+\.png$", f.name))
  assert len(names) == 20
  by_index = {int(n.split("_")[1]): int(n.split("_")[2][:-4]) for n in names}
  assert labels.tolist() == [by_index[i] for i in range(20)]
  # The first images of the original CIFAR-10 test set: cat, ship, ship, airplane.
  assert labels[:4].tolist() == [3, 8, 8, 0]
  with pytest.raises(ValueError, match="test images only"):
    data.load_cifar10("samples", "train")


def _synthetic(seed=0, per_class=2, classes=(0, 3, 9)):
  """{split: [(class, name, uint8 image)]} with random pixels."""
  rng = np.random.default_rng(seed)
  out = {}
  for split in ("train", "test"):
    out[split] = [(c, f"{i:04d}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
                  for c in classes for i in range(per_class)]
  return out


def _png(img):
  buf = io.BytesIO()
  Image.fromarray(img).save(buf, format="PNG")
  return buf.getvalue()


def _expected(items):
  items = sorted(items, key=lambda t: (t[0], t[1]))
  return np.stack([t[2] for t in items]), np.array([t[0] for t in items], np.int32)


@pytest.fixture
def synthetic_tarball(tmp_path):
  items = _synthetic()
  path = tmp_path / "tiny.tar.gz"
  with tarfile.open(path, "w:gz") as tar:
    for split, lst in items.items():
      for c, name, img in reversed(lst):  # stored out of order on purpose
        b = _png(img)
        info = tarfile.TarInfo(f"{split}/{data.CIFAR10_CLASSES[c]}/{name}")
        info.size = len(b)
        tar.addfile(info, io.BytesIO(b))
  return path, items


def test_tarball_loader_class_major_and_cached(synthetic_tarball, tmp_path, monkeypatch):
  path, items = synthetic_tarball
  cache = tmp_path / "cache"
  monkeypatch.setenv("ONEPIXEL_CACHE", str(cache))
  for split in ("train", "test"):
    images, labels = data.load_cifar10(str(path), split)
    want_x, want_y = _expected(items[split])
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    np.testing.assert_array_equal(images, want_x)
    np.testing.assert_array_equal(labels, want_y)
  cached = sorted(p.name for p in cache.iterdir())
  assert len(cached) == 2 and all(p.endswith(".npz") for p in cached)
  images2, labels2 = data.load_cifar10(path, "test")   # from the cache
  np.testing.assert_array_equal(images2, _expected(items["test"])[0])
  np.testing.assert_array_equal(labels2, _expected(items["test"])[1])


def test_folder_loader(tmp_path):
  items = _synthetic(seed=1)
  root = tmp_path / "tree"
  for split, lst in items.items():
    for c, name, img in lst:
      d = root / split / data.CIFAR10_CLASSES[c]
      d.mkdir(parents=True, exist_ok=True)
      Image.fromarray(img).save(d / name)
  images, labels = data.load_cifar10(root, "train")
  want_x, want_y = _expected(items["train"])
  np.testing.assert_array_equal(images, want_x)
  np.testing.assert_array_equal(labels, want_y)


def test_loader_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="ONEPIXEL_CIFAR10"):
    data.load_cifar10(tmp_path / "nope.tar.gz")
  with pytest.raises(ValueError, match="split"):
    data.load_cifar10("samples", "validation")
  (tmp_path / "tree" / "test" / "unicorn").mkdir(parents=True)
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "tree/test/unicorn/0.png")
  with pytest.raises(ValueError, match="unknown class folder 'unicorn'"):
    data.load_cifar10(tmp_path / "tree")
  bad = tmp_path / "bad.tar.gz"
  bad.write_bytes(b"not a tarball")
  with pytest.raises(ValueError, match="bad.tar.gz"):
    data.cifar10.load_image_folder(bad, use_cache=False)


def test_default_tarball_env(monkeypatch, tmp_path):
  monkeypatch.setenv("ONEPIXEL_CIFAR10", str(tmp_path / "x.tar.gz"))
  assert data.default_tarball() == tmp_path / "x.tar.gz"
  monkeypatch.delenv("ONEPIXEL_CIFAR10")
  assert data.default_tarball().parts[-3:] == ("shared", "data", "cifar10-jpeg.tar.gz")


@pytest.mark.skipif(not data.default_tarball().is_file(),
                    reason="CIFAR-10 tarball absent (set ONEPIXEL_CIFAR10 or put it in "
                           "../shared/data/cifar10-jpeg.tar.gz)")
def test_real_tarball_test_split():
  images, labels = data.load_cifar10(data.default_tarball(), "test")
  assert images.shape == (10000, 32, 32, 3) and images.dtype == np.uint8
  assert np.bincount(labels).tolist() == [1000] * 10
  assert np.all(np.diff(labels) >= 0)  # class-major
  # test/cat/0000.jpg is the first image of the original test set (a lossy copy).
  samples, _ = data.load_cifar10("samples")
  diff = np.abs(images[3000].astype(int) - samples[0].astype(int)).mean()
  assert diff < 15


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_datasets") is None,
                    reason="tensorflow-datasets not installed (optional 'tfds' source)")
def test_tfds_loader_with_mock_data():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=6):
    images, labels = data.load_cifar10("tfds", "test")
  assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (6,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() < 10


def test_draw_correct_takes_the_first_correct_images_of_the_draw_order():
  from onepixel_jax import data
  n = 40
  images = np.zeros((n, 2, 2, 3), np.uint8)
  images[:, 0, 0, 0] = np.arange(n)
  labels = (np.arange(n) % 3 == 0).astype(int)  # the "model" below says class 1 for even ids
  predict = lambda x: np.eye(2)[(np.asarray(x)[:, 0, 0, 0] % 2 == 0).astype(int)]
  correct = lambda ids: ids[predict(images[ids]).argmax(1) == labels[ids]]
  ids, probs = data.draw_correct(predict, images, labels, 5, seed=3, batch=7)
  assert list(ids) == sorted(ids) and len(correct(ids)) == 5
  np.testing.assert_array_equal(probs, predict(images[ids]))
  # The examined images are a prefix of draw()'s order, ending at the 5th correct one.
  order = np.random.default_rng(3).permutation(n)
  assert set(ids) == set(order[:len(ids)]) and order[len(ids) - 1] in correct(ids)
  np.testing.assert_array_equal(data.draw(n, len(ids), 3), ids)
  more, _ = data.draw_correct(predict, images, labels, 8, seed=3, batch=5)
  assert set(correct(ids)) <= set(correct(more))  # a smaller count takes a prefix of a larger one
  with pytest.raises(ValueError, match="only 20 of the 40 images are classified correctly"):
    data.draw_correct(predict, images, labels, 21, seed=3)


def test_val_split_is_the_held_out_part_of_the_training_split(synthetic_tarball, tmp_path, monkeypatch):
  import types
  path, _ = synthetic_tarball
  monkeypatch.setenv("ONEPIXEL_CACHE", str(tmp_path / "cache"))
  cifar = types.SimpleNamespace(name="c", num_classes=10, input_size=(32, 32))
  x, y = data.load(str(path), "train", cifar)
  (xt, yt), (xv, yv) = data.split_train_val(x, y, 3)
  assert len(xv) == 3 and len(xt) == len(x) - 3
  # Together the two parts are the training split, each image once.
  both = np.concatenate([xt, xv]).reshape(len(x), -1)
  assert sorted(map(bytes, both)) == sorted(map(bytes, x.reshape(len(x), -1)))
  # "val" is the default split's held-out part (NUM_VAL images, or all of a smaller split).
  vx, vy = data.load(str(path), "val", cifar)
  _, (wx, wy) = data.split_train_val(x, y)
  np.testing.assert_array_equal(vx, wx)
  np.testing.assert_array_equal(vy, wy)
  with pytest.raises(ValueError, match="split 'val'.*CIFAR-10 only"):
    data.load("samples", "val", types.SimpleNamespace(name="m", num_classes=1000, input_size=(227, 227)))


def _write(members, path):
  with tarfile.open(path, "w:gz") as tar:
    for name, b in members:
      info = tarfile.TarInfo(name)
      info.size = len(b)
      tar.addfile(info, io.BytesIO(b))
  return path


def test_draw_subset_keeps_the_drawn_images_and_greys_the_rest(synthetic_tarball, tmp_path):
  path, items = synthetic_tarball
  images, labels = _expected(items["test"])
  keep, seed = 2, 3
  sub = _write(data.draw_subset_members(path, keep, seed), tmp_path / "s.tar.gz")
  sub_images, sub_labels = data.cifar10.load_image_folder(sub, use_cache=False)
  assert sub_labels.tolist() == labels.tolist()  # same length, order and labels
  drawn = data.draw(len(images), keep, seed)
  assert drawn.tolist() == sorted(data.draw_order(len(images), seed)[:keep].tolist())
  np.testing.assert_array_equal(sub_images[drawn], images[drawn])
  rest = np.setdiff1d(np.arange(len(images)), drawn)
  assert len(rest) == len(images) - keep and (sub_images[rest] == data.PLACEHOLDER_GREY).all()
  assert not (images[rest] == data.PLACEHOLDER_GREY).all()  # the originals were not grey


def test_draw_subset_rejects_bad_input_in_one_line(synthetic_tarball, tmp_path):
  path, items = synthetic_tarball
  n = len(items["test"])
  for keep in (0, n + 1):
    with pytest.raises(ValueError, match=f"keep must be between 1 and the split's {n} images"):
      data.draw_subset_members(path, keep, 0)
  with pytest.raises(ValueError, match="not a CIFAR-10 tarball"):
    data.draw_subset_members(tmp_path, 1, 0)


def test_draw_subset_of_the_real_tarball_draws_the_same_images(cifar10_tarball, tmp_path):
  images, labels = data.load_cifar10(cifar10_tarball)
  sub = _write(data.draw_subset_members(cifar10_tarball, 40, 0), tmp_path / "s.tar.gz")
  assert sub.stat().st_size < 200_000  # what lets it travel: the whole archive is 19 MB
  sub_images, sub_labels = data.cifar10.load_image_folder(sub, use_cache=False)
  np.testing.assert_array_equal(sub_labels, labels)
  ids = data.draw(len(images), 40, 0)
  np.testing.assert_array_equal(sub_images[ids], images[ids])


def test_draw_subset_entry_point(synthetic_tarball, tmp_path):
  path, items = synthetic_tarball
  run = lambda *a: subprocess.run([sys.executable, "-m", "experiments.draw_subset", f"--data={path}", *a],  # noqa: E731
                                  capture_output=True, text=True, cwd=REPO)
  bad = run("--keep=0", f"--out={tmp_path / 'bad.tar.gz'}")
  assert bad.returncode != 0 and not (tmp_path / "bad.tar.gz").exists()
  assert bad.stderr.strip().splitlines()[-1].startswith("draw_subset: error: keep must be between 1")
  ok = run("--keep=2", f"--out={tmp_path / 'sub.tar.gz'}")
  assert ok.returncode == 0, ok.stderr
  members = {m.name for m in tarfile.open(tmp_path / "sub.tar.gz")}
  assert members == {f"test/{data.CIFAR10_CLASSES[c]}/{name}" for c, name, _ in items["test"]}
