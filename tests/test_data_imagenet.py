"""ImageNet data: class metadata, resize + centre crop, the foolbox samples,
image folders (synthetic), TFDS (mocked) and the experiment's dispatch."""

import importlib.util
import types

import numpy as np
import pytest
from PIL import Image

from onepixel_jax import data
from onepixel_jax.data import imagenet


def test_class_metadata():
  names, ids = imagenet.class_names(), imagenet.wnids()
  assert len(names) == len(ids) == 1000
  assert names[0] == "tench" and ids[0] == "n01440764" and ids[-1] == "n15075141"
  assert list(ids) == sorted(ids)  # class ids follow the sorted WordNet ids


def test_resize_center_crop_keeps_the_centre():
  # 300 wide x 200 high: shorter side -> 256 (384 x 256), then the central 224 x 224.
  img = np.zeros((200, 300, 3), np.uint8)
  img[:, 150:] = 255  # right half white
  out = imagenet.resize_center_crop(img, (224, 224))
  assert out.shape == (224, 224, 3) and out.dtype == np.uint8
  assert out[:, :100].max() < 10 and out[:, 124:].min() > 245  # the edge stays in the middle
  assert imagenet.resize_center_crop(Image.fromarray(img).convert("L"), (227, 227)).shape == (227, 227, 3)


def test_samples():
  images, labels = imagenet.load("samples", "test", (224, 224))
  assert images.shape == (20, 224, 224, 3) and images.dtype == np.uint8
  names = sorted(f.name for f in data.samples.samples_dir().iterdir() if f.name.startswith("imagenet_"))
  want = {int(n.split("_")[1]): int(n.split("_")[2][:-4]) for n in names}
  assert labels.dtype == np.int32 and labels.tolist() == [want[i] for i in range(20)]
  assert imagenet.load_samples((227, 227))[0].shape == (20, 227, 227, 3)
  with pytest.raises(ValueError, match="validation images only"):
    imagenet.load("samples", "train")
  with pytest.raises(ValueError, match="split"):
    imagenet.load("samples", "val2")


def _save(path, seed, size=(40, 30)):
  path.parent.mkdir(parents=True, exist_ok=True)
  img = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
  Image.fromarray(img).save(path)


def test_folder_of_class_folders(tmp_path):
  root = tmp_path / "imagenet"
  _save(root / "val" / "n01443537" / "b.png", 0)        # goldfish, 1
  _save(root / "val" / "n01443537" / "a.png", 1)
  _save(root / "val" / "7" / "c.png", 2)                # a numeric class id
  images, labels = imagenet.load(str(root), "validation", (32, 32))
  assert isinstance(images, imagenet.LazyImages) and images.shape == (3, 32, 32, 3)
  assert labels.tolist() == [1, 1, 7]                   # class-major, files by name
  want = imagenet.resize_center_crop((root / "val" / "n01443537" / "a.png").read_bytes(), (32, 32))
  np.testing.assert_array_equal(images[0], want)
  np.testing.assert_array_equal(images[np.array([2, 0])][1], want)
  assert images[1:].shape == (2, 32, 32, 3) and np.asarray(images).shape == (3, 32, 32, 3)
  with pytest.raises(IndexError):
    images[3]
  _save(root / "val" / "unicorn" / "x.png", 3)
  with pytest.raises(ValueError, match="unknown class folder 'unicorn'"):
    imagenet.load(root, "validation", (32, 32))


def test_flat_validation_folder(tmp_path):
  d = tmp_path / "validation"
  _save(d / "ILSVRC2012_val_00000002.JPEG", 0)
  _save(d / "ILSVRC2012_val_00000001.JPEG", 1)
  images, labels = imagenet.load_image_folder(tmp_path, "validation", (16, 16))
  assert labels.tolist() == [65, 970]  # the official ground truth of val images 1 and 2
  assert images[0].shape == (16, 16, 3)
  with pytest.raises(FileNotFoundError):
    imagenet.load(tmp_path / "nope")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_datasets") is None,
                    reason="tensorflow-datasets not installed (optional 'tfds' source)")
def test_tfds(tmp_path):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=4):
    images, labels = imagenet.load("tfds", "test", (24, 24))
    assert len(images) == len(labels) == 4 and images.shape == (4, 24, 24, 3)
    x, y = images[np.array([3, 1])], labels[np.array([3, 1])]
  assert x.dtype == np.uint8 and y.dtype == np.int32 and y.min() >= 0 and y.max() < 1000
  with pytest.raises(ValueError, match="manual download"):
    imagenet.load_tfds("validation", data_dir=tmp_path)


def test_data_load_picks_the_dataset_by_the_models_classes():
  model = types.SimpleNamespace(name="m", num_classes=1000, input_size=(227, 227))
  images, labels = data.load("samples", "test", model)
  assert images.shape == (20, 227, 227, 3) and labels.shape == (20,)
  np.testing.assert_array_equal(labels, imagenet.load_samples((227, 227))[1])
  cifar = types.SimpleNamespace(name="c", num_classes=10, input_size=(32, 32))
  np.testing.assert_array_equal(data.load("samples", "test", cifar)[1], data.load_cifar10("samples")[1])
  with pytest.raises(ValueError, match="no dataset loader"):
    data.load("samples", "test", types.SimpleNamespace(name="m", num_classes=7, input_size=(8, 8)))
  with pytest.raises(ValueError, match=r"the data's images are \(32, 32\) but c expects \(64, 64\)"):
    data.load("samples", "test", types.SimpleNamespace(name="c", num_classes=10, input_size=(64, 64)))
