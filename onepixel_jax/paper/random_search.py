"""The paper's random-search baseline (Table VII): 100 random single-pixel
changes per image; an image counts as fooled (non-targeted) if any of them
changes the predicted label.

Random pixels are drawn as DE's initial population is (``perturb.init_candidates``:
position uniform over the image, colour from N(128, 127) clipped), from a key
that depends only on (seed, image id), so a resumed run draws the same pixels.
"""

from __future__ import annotations

import numpy as np

from onepixel_jax import perturb
from onepixel_jax.analysis import query
from onepixel_jax.attack import attack_keys
from onepixel_jax.results import succeeded


def records(model, images, labels, ids, trials: int = 100, pixels: int = 1, seed: int = 0,
            batch_images: int | None = None):
  """Yields one non-targeted record per image (same keys as attack records).

  Args:
    model: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3]; labels: int[N]; ids: int[N] image ids.
    trials: random perturbations per image (paper: 100).
  The record's perturbation is the first trial that fools the model (else the
  trial with the lowest true-class probability); ``queries`` counts the
  trials up to and including the first success (``trials`` if none).
  """
  images = np.asarray(images)
  h, w = images.shape[1:3]
  keys = attack_keys(seed, ids, np.full(len(ids), -1))
  step = batch_images or max(1, 1024 // trials)
  for s in range(0, len(images), step):
    px = perturb.random_perturbations(keys[s:s + step], trials, pixels, h, w)  # [n, trials, k, 5]
    probs = query.probabilities(model, images[s:s + step], px, batch_size=len(px) * trials)
    for j in range(px.shape[0]):
      i = s + j
      y = int(labels[i])
      fooled = np.flatnonzero(succeeded(probs[j].argmax(-1), y, -1))
      t = int(fooled[0]) if len(fooled) else int(np.argmin(probs[j, :, y]))
      p = probs[j, t]
      yield {
          "id": int(ids[i]), "label": y, "target": None, "success": bool(len(fooled)),
          "predicted": int(p.argmax()), "adversarial_prob": float(p.max()), "true_prob": float(p[y]),
          "target_prob": None, "perturbation": px[j, t].tolist(), "pixels": pixels,
          "queries": t + 1 if len(fooled) else trials, "generations": 0,
          "distortion": float(perturb.distortion(images[i:i + 1], px[j, t][None])[0]),
      }


random_pixel_records = records  # the name before this module moved (onepixel_jax.baseline)
