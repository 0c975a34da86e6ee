"""The analyses' inputs: the main job's draw, correctly classified images only."""

import numpy as np
import pytest

from onepixel_jax import data, models
from onepixel_jax.analysis import inputs


def test_inputs_are_the_correctly_classified_images_of_the_draw():
  inp = inputs.load_inputs("allconv", None, "samples", num_images=8, seed=0)
  images, labels = data.load_cifar10("samples")
  drawn = data.draw(20, 8, 0)
  clean = data.classify(models.load("allconv"), images[drawn])
  keep = drawn[clean.argmax(1) == labels[drawn]]
  assert inp.num_drawn == 8 and inp.ids.tolist() == keep.tolist() and len(keep) < 8 or len(keep) == 8
  np.testing.assert_array_equal(inp.images, images[keep])
  np.testing.assert_array_equal(inp.labels, labels[keep])
  assert (inp.clean.argmax(1) == inp.labels).all()
  assert inp.describe()["ids"] == keep.tolist() and inp.class_names[0] == "airplane"
  # Records read from a results file describe their own images, in order of first appearance.
  recs = [{"id": 9}, {"id": 2}, {"id": 9}]
  assert inp.describe(recs) == {"model": "allconv", "data": inp.data, "num_records": 3, "num_images": 2,
                                "ids": [9, 2]}


def test_bad_inputs_are_one_line_errors():
  with pytest.raises(ValueError, match="unknown model 'resnet'"):
    inputs.load_inputs("resnet", None, "samples", 1)
  with pytest.raises(ValueError, match="num_images=21 but the data has only 20 images"):
    inputs.load_inputs("allconv", None, "samples", 21)
