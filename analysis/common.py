"""Flags and plumbing shared by the analysis scripts (flags in, files out)."""

from __future__ import annotations

import json
import os
import sys
import time

from absl import flags

from onepixel_jax import query, results

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "allconv", "Network: allconv, nin, vgg16 (bundled checkpoints).")
flags.DEFINE_string("checkpoint", None, "A .msgpack checkpoint instead of the bundled weights.")
flags.DEFINE_string("data", "samples", "'samples' (20 lossless CIFAR-10 test images in the foolbox wheel), 'tfds', "
                    "or an image folder / .tar.gz (e.g. $ONEPIXEL_CIFAR10).")
flags.DEFINE_integer("seed", 0, "Seed of the image draw (as experiments.attack) and of every attack.")
flags.DEFINE_integer("batch_size", 512, "Perturbed images per forward pass of the batched evaluations.")
flags.DEFINE_string("results", None, "Optional attack records (experiments.attack's results.jsonl, or an "
                    "analysis's attacks.jsonl) of the same --data; see each script.")


def define_io(num_images: int | None, out: str):
  """--num_images and --out with a per-script default (each sized to finish in <= 10 min on 2 CPU cores)."""
  flags.DEFINE_integer("num_images", num_images, "Images drawn at random (seeded, as experiments.attack) from "
                       "the test split; only correctly classified ones are analysed. None: all.")
  flags.DEFINE_string("out", out, "Output directory.")


def load_inputs() -> query.Inputs:
  return query.load_inputs(FLAGS.model, FLAGS.checkpoint, FLAGS.data, FLAGS.num_images, FLAGS.seed)


def weights_note(inputs: query.Inputs) -> str:
  """A line naming the weights; loud when they are not trained (a checkpoint whose metadata says 'random')."""
  note = ""
  if FLAGS.checkpoint:
    meta = os.path.splitext(FLAGS.checkpoint)[0] + ".json"
    if os.path.exists(meta):
      with open(meta) as f:
        note = json.load(f).get("note", "")
  label = f"{inputs.model.name} ({'checkpoint ' + os.path.basename(FLAGS.checkpoint) if FLAGS.checkpoint else 'bundled weights'})"
  return f"{label}: {note.upper()}" if "random" in note.lower() else ""


def read_records(path: str, inputs: query.Inputs, successful_only: bool = False) -> list[dict]:
  """Attack records from a JSONL file whose ids index ``inputs``' split."""
  recs = results.read(path)
  if not recs:
    raise ValueError(f"no attack records in {path}")
  n = len(inputs.all_images)
  bad = [r["id"] for r in recs if not 0 <= r["id"] < n]
  if bad:
    raise ValueError(f"{path}: record id {bad[0]} is outside --data={inputs.data} ({n} images); "
                     f"pass the --data the attacks ran on")
  return [r for r in recs if r["success"] or not successful_only]


def write_json(path: str, data: dict):
  from onepixel_jax import figures
  figures.write_json(path, data)


def run(name: str, body):
  """Runs ``body()`` -> dict of outputs; one-line errors; prints what was written and the wall time."""
  t0 = time.time()
  try:
    written = body()
  except (ValueError, OSError) as e:
    sys.exit(f"analysis.{name}: error: {e}".splitlines()[0])
  print(f"analysis.{name}: wrote {len(written)} files to {FLAGS.out} in {time.time() - t0:.0f} s")
