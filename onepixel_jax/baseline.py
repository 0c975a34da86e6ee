"""The paper's random-search baseline (Table VII): 100 random single-pixel
changes per image; an image counts as fooled (non-targeted) if any of them
changes the predicted label.

Random pixels are drawn as DE's initial population is (``perturb.init_candidates``:
position uniform over the image, colour from N(128, 127) clipped), from a key
that depends only on (seed, image id), so a resumed run draws the same pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax import perturb
from onepixel_jax.attack import attack_keys


def random_pixel_records(model, images, labels, ids, trials: int = 100, pixels: int = 1, seed: int = 0,
                         batch_images: int | None = None):
  """Yields one non-targeted record per image (same keys as attack records).

  Args:
    model: a loaded model (``apply``, ``variables``).
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

  @jax.jit
  def evaluate(variables, imgs, ks):
    cand = jax.vmap(lambda k: perturb.init_candidates(k, trials, pixels, h, w))(ks)
    px = perturb.to_pixels(cand, h, w)
    adv = perturb.apply(imgs[:, None], px).reshape(-1, h, w, 3)
    probs = model.apply(variables, adv).reshape(imgs.shape[0], trials, -1)
    return px, probs

  for s in range(0, len(images), step):
    px, probs = (np.asarray(a) for a in evaluate(model.variables, jnp.asarray(images[s:s + step]),
                                                 jnp.asarray(keys[s:s + step])))
    for j in range(px.shape[0]):
      i = s + j
      y = int(labels[i])
      pred = probs[j].argmax(-1)
      fooled = np.flatnonzero(pred != y)
      t = int(fooled[0]) if len(fooled) else int(np.argmin(probs[j, :, y]))
      p = probs[j, t]
      yield {
          "id": int(ids[i]), "label": y, "target": None, "success": bool(len(fooled)),
          "predicted": int(p.argmax()), "adversarial_prob": float(p.max()), "true_prob": float(p[y]),
          "target_prob": None, "perturbation": px[j, t].tolist(),
          "queries": t + 1 if len(fooled) else trials, "generations": 0,
          "distortion": float(perturb.distortion(images[i:i + 1], px[j, t][None])[0]),
      }
