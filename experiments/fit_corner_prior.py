r"""Fits ``learned_corners``' prior (:mod:`onepixel_jax.corner_prior`) for a network.

    python -m experiments.fit_corner_prior --model=allconv --num_images=200 \
        --workdir=../workdirs/corner_prior_allconv --out=onepixel_jax/weights/corner_prior_allconv.json

Queries every (position, extreme colour) pair of ``--num_images`` correctly
classified images of the *validation* split (the training split's 5,000
held-out images: never trained on, never the test split) and fits the linear
prior on what they measured. The margins are saved per chunk of images in
``--workdir`` (rerun the same command to resume after a kill). Prints and
writes the held-out (4-fold) success of the learned fixed order against
OPPSLA's fixed order on the same images, and the weights with their
provenance to ``--out``.
"""

import json
import os
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from onepixel_jax import corner_prior, data, methods
from onepixel_jax.analysis import corner_search
from onepixel_jax.analysis import inputs as inputs_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "allconv", "Network (a CIFAR-10 model name).")
flags.DEFINE_string("checkpoint", None, "Checkpoint (default: the bundled one).")
flags.DEFINE_string("data", "", "CIFAR-10 source (default: $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz).")
flags.DEFINE_integer("num_images", 200, "Correctly classified validation images to fit on.")
flags.DEFINE_integer("seed", 0, "Seed of the images' draw.")
flags.DEFINE_float("ridge", 1e-3, "Ridge penalty per image.")
flags.DEFINE_float("top", 0.01, "Share of each image's candidates that count as its best (the target).")
flags.DEFINE_string("workdir", None, "Where the measured margins are kept (resumable).")
flags.DEFINE_string("out", None, "The prior's JSON.")
flags.mark_flags_as_required(["workdir", "out"])

CHUNK = 10


def _margins(inp, workdir: str) -> np.ndarray:
  os.makedirs(workdir, exist_ok=True)
  chunks = []
  for s in range(0, len(inp.ids), CHUNK):
    path = os.path.join(workdir, f"margins_{inp.ids[s]:05d}_{len(inp.ids[s:s + CHUNK])}.npy")
    if not os.path.exists(path):
      t0 = time.time()
      m = corner_search.margins(inp.model, inp.images[s:s + CHUNK], inp.labels[s:s + CHUNK])
      np.save(path + ".tmp.npy", m)
      os.replace(path + ".tmp.npy", path)
      print(f"images {s + 1}-{s + len(m)} of {len(inp.ids)}: {time.time() - t0:.0f} s", flush=True)
    chunks.append(np.load(path))
  return np.concatenate(chunks)


def main(argv):
  if len(argv) > 1:
    sys.exit(f"fit_corner_prior: error: unexpected arguments {argv[1:]}")
  t0 = time.time()
  try:
    inp = inputs_lib.load_inputs(FLAGS.model, FLAGS.checkpoint, FLAGS.data or str(data.default_tarball()), None,
                                 FLAGS.seed,
                                 split="val", num_correct=FLAGS.num_images)
  except (ValueError, OSError) as e:
    sys.exit(f"fit_corner_prior: error: {e}".splitlines()[0])
  margins = _margins(inp, FLAGS.workdir)
  feats = corner_prior.batch_features(inp.images)
  h, w = inp.images.shape[1:3]
  oppsla = methods.PrioritizedCorners(pixels=1, popsize=1, height=h, width=w)
  order = np.stack([np.asarray(oppsla.init(None, jnp.asarray(im), 0, -1)) for im in inp.images])
  oppsla_scores = np.empty(order.shape, np.float32)
  np.put_along_axis(oppsla_scores, order, -np.arange(order.shape[1], dtype=np.float32)[None], 1)
  cv = corner_prior.cross_validate(feats, margins, {"prioritized_corners": oppsla_scores},
                                   ridge=FLAGS.ridge, top=FLAGS.top)
  weights = corner_prior.fit(feats, corner_prior.targets(margins, FLAGS.top), FLAGS.ridge)
  spec = {
      "features": list(corner_prior.FEATURES), "weights": [float(v) for v in weights],
      "model": inp.model.name, "split": "val", "seed": FLAGS.seed, "num_images": int(len(inp.ids)),
      "ids": inp.ids.tolist(), "ridge": FLAGS.ridge, "top": FLAGS.top,
      "held_out_success": cv, "seconds": round(time.time() - t0, 1),
      "command": "python -m experiments.fit_corner_prior " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
  }
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    json.dump(spec, f, indent=1)
  print(json.dumps(cv))
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  jax.config.config_with_absl()
  app.run(main)
