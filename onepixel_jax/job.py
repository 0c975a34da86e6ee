"""The main job: attack a trained model on a dataset, writing results as it goes.

The paper's protocol (Sec. IV): draw images at random from the test set (fixed
seed), attack only the ones the model classifies correctly, and give each
image 9 targeted attacks (one per other class) or one non-targeted attack.

Files in the output directory:
  config.json    the settings; a rerun with the same directory must match them.
  results.jsonl  one record per finished attack, appended as attacks finish;
                 a rerun skips the attacks already there (resume after a kill).
  summary.json   metrics over all records (see ``paper.metrics.summary``).
  examples.png   originals beside adversarial images (changed pixels circled,
                 ``figures.examples``).

Models load with ``models.load``, images with ``data.load`` / ``data.draw`` /
``data.classify``; this module plans the attacks, resumes, runs and records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import jax
import numpy as np

from onepixel_jax import data, figures, models, results
from onepixel_jax.attack import AttackConfig, attack_iter
from onepixel_jax.paper import metrics


@dataclasses.dataclass(frozen=True)
class Job:
  """One attack run. ``num_images`` is how many images are drawn (None: all);
  only the correctly classified ones are attacked. ``num_correct`` instead
  attacks exactly that many correctly classified images, the first of the
  same seeded random order (:func:`data.draw_correct`)."""

  model: str = "allconv"
  checkpoint: str | None = None
  data: str = "samples"
  split: str = "test"
  num_images: int | None = None
  num_correct: int | None = None
  targeted: bool = True
  seed: int = 0
  config: AttackConfig = AttackConfig()
  batch_size: int | None = None
  # Sparse incremental inference where the model supports it; results equal
  # the dense path's, so neither this nor batch_size stops a resume.
  incremental: bool = True

  def to_json(self) -> dict:
    d = dataclasses.asdict(self)
    d["config"] = dataclasses.asdict(self.config)
    if d["config"]["dither"] is not None:
      d["config"]["dither"] = list(d["config"]["dither"])
    return d


def plan(ids, labels, targeted: bool, num_classes: int):
  """The attack list: (image id, label, target or -1), 9 targets per image if targeted."""
  out = []
  for i, y in zip(ids, labels):
    if targeted:
      out += [(int(i), int(y), t) for t in range(num_classes) if t != y]
    else:
      out.append((int(i), int(y), -1))
  return out


def weights_sha256(model) -> str:
  """sha256 of a model's weights as loaded (every leaf's float32 bytes, in
  tree order): a run's records are only resumed with the same weights."""
  h = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(model.variables):
    h.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
  return h.hexdigest()


def _settings(job: Job, weights: str) -> dict:
  return {**job.to_json(), "weights_sha256": weights}


def _check_resumable(out_dir: str, job: Job, weights: str):
  new = _settings(job, weights)

  def upgrade(old):
    if isinstance(old.get("config"), dict):  # written before later AttackConfig fields existed: their defaults
      old["config"] = {**dataclasses.asdict(AttackConfig()), **old["config"]}
    return old

  results.check_resumable(os.path.join(out_dir, "config.json"), new, _SPEED_ONLY, upgrade,
                          added=("weights_sha256",))  # folders written before the weights were recorded


_SPEED_ONLY = ("batch_size", "incremental")  # settings that change speed, never results


def run(job: Job, out_dir: str, progress: bool = True, log=print) -> dict:
  """Runs (or resumes) a job into ``out_dir``; returns the summary.

  Every input is checked before anything is written: a bad model name,
  corrupt checkpoint, unreadable data path or too many images raises
  ValueError/FileNotFoundError with one line, and leaves ``out_dir`` untouched.
  """
  t0 = time.time()
  model = models.load(job.model, job.checkpoint)
  images, labels = data.load(job.data, job.split, model)
  if job.num_correct is not None and job.num_images is not None:
    raise ValueError("give num_images (images drawn) or num_correct (correct images attacked), not both")
  weights = weights_sha256(model)
  _check_resumable(out_dir, job, weights)
  if job.num_correct is not None:
    ids, probs = data.draw_correct(model, images, labels, job.num_correct, job.seed)
  else:
    ids = data.draw(len(images), job.num_images, job.seed)
    probs = data.classify(model, images[ids])
  correct = probs.argmax(1) == labels[ids]
  attacked = ids[correct]
  clean_prob = {int(i): float(p[labels[i]]) for i, p in zip(ids, probs)}
  todo = plan(attacked, labels[attacked], job.targeted, model.num_classes)

  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(_settings(job, weights), f, indent=1)
  path = os.path.join(out_dir, "results.jsonl")
  results.repair(path)
  done = {(r["id"], -1 if r["target"] is None else r["target"]) for r in results.read(path)}
  remaining = [a for a in todo if (a[0], a[2]) not in done]
  log(f"{job.model}: {correct.sum()}/{len(ids)} drawn images classified correctly; "
      f"{len(todo)} attacks, {len(todo) - len(remaining)} already in {path}, {len(remaining)} to run")

  if remaining:
    rid, rlab, rtgt = (np.asarray(c) for c in zip(*remaining))
    for rec in attack_iter(model, images[rid], rlab, None if not job.targeted else rtgt, job.config, job.seed,
                           job.batch_size, ids=rid, progress=progress,
                           incremental=job.incremental):
      rec.pop("index")
      results.append(path, [{**rec, "model": job.model, "clean_prob": clean_prob[rec["id"]]}])

  records = [r for r in results.read(path) if r["id"] in set(attacked.tolist())]
  summary = {
      "model": job.model,
      "data": job.data,
      "split": job.split,
      "pixels": job.config.pixels,
      "targeted": job.targeted,
      "popsize": job.config.popsize,
      "generations": job.config.generations,
      "early_stop": job.config.early_stop,
      "method": job.config.method,
      "max_queries": job.config.max_queries,
      "num_images_drawn": int(len(ids)),
      "clean_accuracy": float(correct.mean()),
      **metrics.summary(records),
      "wall_seconds": round(time.time() - t0, 1),
  }
  summary["num_images"] = int(len(attacked))
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  figures.examples({int(i): images[i] for i in attacked}, records, model.class_names,
                   os.path.join(out_dir, "examples.png"),
                   title=f"{job.model}, {job.config.pixels}-pixel {'targeted' if job.targeted else 'non-targeted'} attack")
  return summary


def format_summary(s: dict) -> str:
  """A small table for the terminal."""
  rows = [
      ("model", s["model"]),
      ("pixels", s["pixels"]),
      ("attack", "targeted (9 per image)" if s["targeted"] else "non-targeted"),
      ("images drawn / attacked", f"{s['num_images_drawn']} / {s['num_images']}"),
      ("attacks", s["num_attacks"]),
  ]
  if s.get("method", "de") != "de":
    rows.append(("method", f"{s['method']}, at most {s['max_queries']} queries per attack"))
  elif "popsize" in s:
    paper = AttackConfig()  # the paper's DE budget (Sec. IV)
    reduced = s["popsize"] < paper.popsize or s["generations"] < paper.generations
    rows.append(("DE budget", f"population {s['popsize']} x {s['generations']} generations"
                 + (f" (REDUCED from the paper's {paper.popsize} x {paper.generations})" if reduced else "")))
  rows.append(("success rate", f"{s['success_rate']:.2%}"))
  if "nontargeted_success_rate" in s:
    rows.append(("images fooled (any target)", f"{s['nontargeted_success_rate']:.2%}"))
  rows += [
      ("mean confidence (successes)", f"{s['confidence']:.2%}" if s["confidence"] == s["confidence"] else "-"),
      ("mean queries per attack", f"{s['mean_queries']:.0f}"),
      ("wall time", f"{s['wall_seconds']:.1f} s"),
  ]
  w = max(len(k) for k, _ in rows)
  return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
