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
    batch_images: images per forward pass (default ~1,024 perturbed images).
  The record's perturbation is the first trial that fools the model (else the
  trial with the lowest true-class probability); ``queries`` counts the
  trials up to and including the first success (``trials`` if none).
  """
  images = np.asarray(images)
  h, w = images.shape[1:3]
  keys = attack_keys(seed, ids, np.full(len(ids), -1))
  px = perturb.random_perturbations(keys, trials, pixels, h, w)  # [N, trials, k, 5]
  chunk = (batch_images or max(1, 1024 // trials)) * trials
  probs = query.probabilities(model, images, px, batch_size=chunk)  # one compiled evaluation for all images
  for i in range(len(images)):
    y = int(labels[i])
    fooled = np.flatnonzero(succeeded(probs[i].argmax(-1), y, -1))
    t = int(fooled[0]) if len(fooled) else int(np.argmin(probs[i, :, y]))
    p = probs[i, t]
    yield {
        "id": int(ids[i]), "label": y, "target": None, "success": bool(len(fooled)),
        "predicted": int(p.argmax()), "adversarial_prob": float(p.max()), "true_prob": float(p[y]),
        "target_prob": None, "perturbation": px[i, t].tolist(), "pixels": pixels,
        "queries": t + 1 if len(fooled) else trials, "generations": 0,
        "distortion": float(perturb.distortion(images[i:i + 1], px[i, t][None])[0]),
    }


random_pixel_records = records  # the name before this module moved (onepixel_jax.baseline)
