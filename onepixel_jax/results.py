"""Attack outcomes as arrays (``AttackResult``), as records (one JSON object
per attack) and as files (JSONL, appended as attacks finish).

* ``AttackResult``: N attacks' outcomes, NumPy arrays in input order; what
  ``onepixel_jax.attack`` returns.
* Records: ``AttackResult.records()`` / ``AttackResult.from_records`` convert
  to and from one JSON-serialisable dict per attack, the format of every
  ``results.jsonl`` (``attack_iter`` yields them). Records carry ``popsize``
  and ``pixels``; the main job adds ``model`` and ``clean_prob``. Records
  written before those fields existed still load (``popsize`` then comes
  from ``queries / (generations + 1)``).
* JSONL: ``append``, ``read``, ``repair``. A run killed at any moment leaves at
  worst a torn last line (the attack that was being written); ``read`` drops
  it and ``repair`` truncates it, so a restarted run appends after the last
  complete record.
* ``succeeded``: the success rule (paper, Sec. III), the one copy of it.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from onepixel_jax import perturb


def succeeded(predicted, labels, targets):
  """bool[...]: a targeted attack (target >= 0) succeeds when the prediction is
  the target, a non-targeted one (target -1) when it is not the true label.

  Works on NumPy and JAX arrays (and inside jit) alike: only operators.
  """
  targeted = targets >= 0
  return (targeted & (predicted == targets)) | (~targeted & (predicted != labels))


def popsize(record: dict) -> int:
  """An attack record's DE population size (older records lack the field:
  every generation, the initial one included, costs ``popsize`` queries)."""
  if record.get("popsize") is not None:
    return int(record["popsize"])
  return int(record["queries"]) // (int(record["generations"]) + 1)


def first_success_query(record: dict) -> int:
  """Queries an attack had made when it first evaluated a succeeding
  candidate, -1 if it never did. Records written before the field existed
  (all DE) give the query count at the end of the first generation whose best
  candidate succeeded: an upper bound, exact to a generation."""
  if record.get("first_success_query") is not None:
    return int(record["first_success_query"])
  history = np.asarray(record.get("predicted_history") or [], np.int64)
  target = -1 if record.get("target") is None else int(record["target"])
  wins = np.flatnonzero((history >= 0) & succeeded(history, int(record["label"]), target))
  return int(popsize(record) * (wins[0] + 1)) if len(wins) else -1


@dataclasses.dataclass(frozen=True)
class AttackResult:
  """Outcome of N attacks, NumPy arrays in the order the attacks were given.

  Attributes:
    success: bool[N]; targeted: the best candidate is classified as the
      target; non-targeted: as anything but the true label (``succeeded``).
    predicted: int[N] the label of the best candidate.
    adversarial_prob: float[N] the probability of ``predicted``.
    true_prob: float[N] the probability of the true label.
    target_prob: float[N] the probability of the target (NaN if non-targeted).
    perturbation: int[N, pixels, 5] as (x, y, r, g, b), x the column, y the row.
    queries: int[N] model evaluations used (popsize per generation, plus the
      initial population).
    generations: int[N] DE generations run.
    distortion: float[N] mean absolute change per channel at the changed pixels.
    labels, targets: int[N] (targets -1 for non-targeted attacks); ids: int[N].
    fitness_history: float[N, G + 1] best fitness after each generation
      (the minimised quantity: true-class probability, or minus the target's
      probability), NaN after the attack stopped.
    predicted_history: int[N, G + 1] the best candidate's label after each
      generation, -1 after the attack stopped.
    popsize: int[N] the DE population of each attack (None where unknown);
      for the other methods, the queries proposed per step.
    first_success_query: int[N] how many queries the attack had made when it
      first evaluated a succeeding candidate (1-based), -1 if none; the
      attack succeeded within a budget of q queries iff 0 < value <= q
      (None where unknown; see ``first_success_query``).
    method: str[N] the search method (``AttackConfig.method``; None where unknown).
  """

  success: np.ndarray
  predicted: np.ndarray
  adversarial_prob: np.ndarray
  true_prob: np.ndarray
  target_prob: np.ndarray
  perturbation: np.ndarray
  queries: np.ndarray
  generations: np.ndarray
  distortion: np.ndarray
  labels: np.ndarray
  targets: np.ndarray
  ids: np.ndarray
  fitness_history: np.ndarray
  predicted_history: np.ndarray
  popsize: np.ndarray | None = None
  first_success_query: np.ndarray | None = None
  method: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.success)

  def adversarial_images(self, images) -> np.ndarray:
    """uint8[N, H, W, 3]: ``images`` with each attack's best perturbation written in."""
    images = np.asarray(images)
    if images.shape[0] != len(self):
      raise ValueError(f"adversarial_images: got {images.shape[0]} images for {len(self)} attacks")
    return np.asarray(perturb.apply(images, self.perturbation))

  @property
  def success_rate(self) -> float:
    return float(self.success.mean()) if len(self) else float("nan")

  def take(self, order) -> "AttackResult":
    """The attacks at positions ``order`` (int[M]), in that order."""
    return dataclasses.replace(self, **{f.name: getattr(self, f.name)[order] for f in dataclasses.fields(self)
                                        if getattr(self, f.name) is not None})

  @classmethod
  def concatenate(cls, parts: list["AttackResult"]) -> "AttackResult":
    """The attacks of ``parts``, one after the other (at least one part)."""
    def cat(name):
      vals = [getattr(p, name) for p in parts]
      return None if any(v is None for v in vals) else np.concatenate(vals)
    return cls(**{f.name: cat(f.name) for f in dataclasses.fields(cls)})

  @classmethod
  def empty(cls, pixels: int, generations: int) -> "AttackResult":
    """No attacks: every array has length 0 (``perturbation`` int[0, pixels, 5])."""
    f, i = np.zeros(0), np.zeros(0, np.int64)
    return cls(success=np.zeros(0, bool), predicted=i, adversarial_prob=f, true_prob=f, target_prob=f,
               perturbation=np.zeros((0, pixels, 5), np.int64), queries=i, generations=i, distortion=f, labels=i,
               targets=i, ids=i, fitness_history=np.zeros((0, generations + 1)),
               predicted_history=np.zeros((0, generations + 1), np.int64), popsize=i, first_success_query=i,
               method=np.zeros(0, str))

  def record(self, i: int) -> dict:
    """Attack ``i`` as one JSON-serialisable dict: ``id``, ``label``, ``target``
    (None for non-targeted), ``success``, ``predicted``, ``adversarial_prob``,
    ``true_prob``, ``target_prob`` (None for non-targeted), ``perturbation``
    ([[x, y, r, g, b], ...]), ``pixels``, ``popsize``, ``queries``,
    ``generations``, ``distortion``, ``fitness_history`` (None for NaN),
    ``predicted_history``, ``first_success_query``, ``method``."""
    target = int(self.targets[i])
    out = {
        "id": int(self.ids[i]),
        "label": int(self.labels[i]),
        "target": None if target < 0 else target,
        "success": bool(self.success[i]),
        "predicted": int(self.predicted[i]),
        "adversarial_prob": float(self.adversarial_prob[i]),
        "true_prob": float(self.true_prob[i]),
        "target_prob": None if not np.isfinite(self.target_prob[i]) else float(self.target_prob[i]),
        "perturbation": np.asarray(self.perturbation[i]).astype(int).tolist(),
        "pixels": int(self.perturbation.shape[1]),
        "queries": int(self.queries[i]),
        "generations": int(self.generations[i]),
        "distortion": float(self.distortion[i]),
        "fitness_history": [None if not np.isfinite(v) else float(v) for v in np.asarray(self.fitness_history[i])],
        "predicted_history": np.asarray(self.predicted_history[i]).astype(int).tolist(),
    }
    if self.popsize is not None:
      out["popsize"] = int(self.popsize[i])
    if self.first_success_query is not None:
      out["first_success_query"] = int(self.first_success_query[i])
    if self.method is not None:
      out["method"] = str(self.method[i])
    return out

  def records(self) -> list[dict]:
    """One record per attack (see ``record``), in order."""
    return [self.record(i) for i in range(len(self))]

  @classmethod
  def from_records(cls, records: list[dict]) -> "AttackResult":
    """Stacks records (as yielded by ``attack_iter`` or read from a JSONL file) in the given order."""
    def col(name, dtype):
      return np.asarray([r[name] for r in records], dtype=dtype)

    def none_as(name, value, dtype):
      return np.asarray([value if r[name] is None else r[name] for r in records], dtype)

    return cls(
        success=col("success", bool),
        predicted=col("predicted", np.int64),
        adversarial_prob=col("adversarial_prob", np.float64),
        true_prob=col("true_prob", np.float64),
        target_prob=none_as("target_prob", np.nan, np.float64),
        perturbation=col("perturbation", np.int64).reshape(len(records), -1, 5),
        queries=col("queries", np.int64),
        generations=col("generations", np.int64),
        distortion=col("distortion", np.float64),
        labels=col("label", np.int64),
        targets=none_as("target", -1, np.int64),
        ids=col("id", np.int64),
        fitness_history=np.asarray([[np.nan if v is None else v for v in r.get("fitness_history", [])]
                                    for r in records], np.float64),
        predicted_history=np.asarray([r.get("predicted_history", []) for r in records], np.int64),
        popsize=np.asarray([popsize(r) for r in records], np.int64),
        first_success_query=np.asarray([first_success_query(r) for r in records], np.int64),
        method=np.asarray([r.get("method", "de") for r in records], str),
    )


def append(path, records) -> None:
  """Appends records, each as one line written in a single ``write`` and flushed to disk."""
  with open(path, "a", encoding="utf-8") as f:
    for r in records:
      f.write(json.dumps(r, separators=(",", ":")) + "\n")
      f.flush()
    os.fsync(f.fileno())


def repair(path) -> int:
  """Truncates a torn (unterminated) last line; returns the bytes removed."""
  if not os.path.exists(path):
    return 0
  with open(path, "rb+") as f:
    data = f.read()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
      f.truncate(keep)
    return len(data) - keep


def read(path) -> list[dict]:
  """All complete records of a JSONL file ([] if it does not exist).

  Raises:
    ValueError naming the file and line if a complete line is not JSON.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  lines = data.split(b"\n")[:-1]  # the part after the last newline is torn or empty
  out = []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{i} is not a JSON record ({e.msg})") from None
  return out


def check_resumable(path, settings: dict, ignore=(), upgrade=None, added=()) -> None:
  """Refuses to resume a run folder whose settings file differs from ``settings``.

  Args:
    path: the folder's settings JSON (absent: a new run, nothing to check).
    settings: this run's settings.
    ignore: keys that never change results (batch size, ...).
    upgrade: optional ``old -> old`` that fills in what older files lack.
    added: keys recorded only by later versions (e.g. ``weights_sha256``):
      compared only where the old file has them.
  Raises:
    ValueError with one line naming the settings that differ (nothing is
    written or lost), or if the file is unreadable.
  """
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path} is unreadable ({e}); use a new --out") from None
  if upgrade is not None:
    old = upgrade(old)
  ignore = set(ignore) | {k for k in added if k not in old}
  diff = [k for k in sorted(set(old) | set(settings)) if k not in ignore and old.get(k) != settings.get(k)]
  if diff:
    raise ValueError(f"--out {os.path.dirname(path) or '.'} holds a run with other settings ({', '.join(diff)} "
                     f"differ); use a new --out or the same settings to resume")
