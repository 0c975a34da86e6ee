"""The images an analysis works on: a model and a seeded draw of images, as
the main job draws them (``data.draw``), keeping the correctly classified ones
(the images the paper attacks)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from onepixel_jax import data as data_lib
from onepixel_jax import models


@dataclasses.dataclass(frozen=True)
class Inputs:
  """The images an analysis works on: correctly classified ones of a seeded draw.

  Attributes:
    model: the loaded model.
    images: uint8[N, H, W, 3]; labels: int[N]; ids: int[N] dataset indices
      (the ``id`` of attack records); clean: float32[N, C] clean probabilities.
    num_drawn: images drawn before keeping the correctly classified ones.
    data: the data source; all_images, all_labels: the whole split (attack
      records from ``--results`` index it by ``id``).
  """

  model: Any
  images: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  clean: np.ndarray
  num_drawn: int
  data: str
  all_images: np.ndarray
  all_labels: np.ndarray

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self.model.class_names)

  def describe(self, records: list[dict] | None = None) -> dict:
    """The images analysed: the draw's, or those of ``records`` (attack records
    read from a results file, which need not be the draw's images: their ids,
    in order of first appearance)."""
    if records is None:
      return {"model": self.model.name, "data": self.data, "num_images_drawn": self.num_drawn,
              "num_images": int(len(self.ids)), "ids": self.ids.tolist()}
    ids = list(dict.fromkeys(int(r["id"]) for r in records))
    return {"model": self.model.name, "data": self.data, "num_records": len(records),
            "num_images": len(ids), "ids": ids}


def load_inputs(model: str, checkpoint: str | None, data: str, num_images: int | None, seed: int = 0,
                split: str = "test", num_correct: int | None = None) -> Inputs:
  """Loads a model and draws images exactly as the main job (``job.run``) does:
  ``num_images`` drawn (keeping the correctly classified ones), or the first
  ``num_correct`` correctly classified ones of the same seeded order
  (``data.draw_correct``, the ``cpu-paper`` preset's images).

  Raises:
    ValueError / FileNotFoundError with one line (bad model, checkpoint, data).
  """
  m = models.load(model, checkpoint)
  images, labels = data_lib.load(data, split, m)
  if num_correct is not None:
    ids, clean = data_lib.draw_correct(m, images, labels, num_correct, seed)
  else:
    ids = data_lib.draw(len(images), num_images, seed)
    clean = data_lib.classify(m, images[ids])
  keep = clean.argmax(1) == labels[ids]
  return Inputs(m, images[ids[keep]], labels[ids[keep]].astype(np.int64), ids[keep], clean[keep], len(ids), data,
                images, labels)
