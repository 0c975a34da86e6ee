"""The one-pixel attack: many differential-evolution attacks at once, compiled.

Su, Vargas, Sakurai, "One pixel attack for fooling deep neural networks"
(IEEE TEVC 2019), Sec. III. Each attack searches for ``k`` pixel tuples
``(x, y, r, g, b)`` with DE; fitness is the target class's probability
(targeted, maximised) or the true class's probability (non-targeted,
minimised). The other search methods of :mod:`methods` (random, corner,
Sparse-RS, OPPSLA's order) run in the same loop: ``AttackConfig(method=...)``.

How it runs:

* A *slot* holds one attack's search state (DE: its population).
  ``batch_size`` slots advance one step (DE: one generation) per compiled
  step, and every slot's ``popsize`` candidates go through the model in one
  forward pass of ``batch_size * popsize`` images.
* A slot whose attack has stopped (early stop or query budget) is refilled
  on the device with the next attack of the queue: its first step evaluates
  the new attack's first candidates (DE: its initial population) in the same
  forward pass in which the other slots evaluate their next ones (continuous
  batching).
* Queries are counted one by one in proposal order: an attack's
  ``first_success_query`` is exact, so one run at the full budget gives its
  success at every smaller budget. The reported candidate is a succeeding one
  if any was seen (the fittest of those), else the fittest.
* Each attack's randomness derives only from ``(seed, id, target)``, so its
  outcome does not depend on the batch size, slot order or device count.
* Slots are sharded over the local devices along the batch axis.
* The host syncs once every ``steps_per_sync`` steps to collect finished
  attacks, and dispatches the next chunk before waiting for the last one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as PS

from onepixel_jax import compiler, corner_prior, de, methods, perturb
from onepixel_jax.models import incremental
from onepixel_jax.results import AttackResult, succeeded

EARLY_STOP_RULES = ("paper", "misclassify", "none")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
  """Attack settings; every default is the paper's (Sec. III-C, IV).

  Attributes:
    pixels: number of pixels changed, ``d`` in the paper (1, 3 or 5).
    popsize: DE population size (paper: 400).
    generations: maximum number of DE generations (paper: 100), so at most
      ``popsize * (generations + 1)`` model queries per attack (40,400).
    F: DE differential weight (paper: 0.5).
    crossover: None for the paper's DE without crossover, else the binomial
      crossover rate in [0, 1].
    strategy: ``"rand1"`` (paper: DE/rand/1) or ``"best1"``.
    dither: None (paper), or ``(lo, hi)`` to draw F from U(lo, hi) each
      generation as SciPy's ``mutation=(lo, hi)``.
    early_stop: ``"paper"``: targeted attacks stop once the target's
      probability exceeds ``target_threshold`` (0.9), non-targeted ones once
      the true class's probability falls below ``true_threshold`` (0.05);
      ``"misclassify"``: stop at the first success (a candidate classified
      as the target / as anything but the true class);
      ``"none"``: always run every generation.
    method: the search (:mod:`methods`): ``"de"`` (the paper's, default),
      ``"random"``, ``"corner"``, ``"sparse_rs"``, ``"prioritized_corners"``,
      ``"guided_corners"``, ``"learned_corners"`` (ours).
      The other methods propose ``popsize`` candidates per step; F,
      crossover, strategy and dither are DE's.
    query_budget: None for the paper's ``popsize * (generations + 1)``
      queries per attack, or a smaller budget (every method stops there).
    corner_prior: ``learned_corners``' prior, a JSON written by
      ``experiments.fit_corner_prior`` (None: the bundled AllConv prior).
  """

  pixels: int = 1
  popsize: int = 400
  generations: int = 100
  F: float = 0.5
  crossover: float | None = None
  strategy: str = "rand1"
  dither: tuple[float, float] | None = None
  early_stop: str = "paper"
  target_threshold: float = 0.9
  true_threshold: float = 0.05
  method: str = "de"
  query_budget: int | None = None
  corner_prior: str | None = None

  def __post_init__(self):
    def bad(msg):
      raise ValueError(f"AttackConfig: {msg}")

    if not isinstance(self.pixels, (int, np.integer)) or self.pixels < 1:
      bad(f"pixels must be an integer >= 1, got {self.pixels!r}")
    if not isinstance(self.popsize, (int, np.integer)) or self.popsize < 4:
      bad(f"popsize must be an integer >= 4 (DE/rand/1 needs 3 partners besides each member), got {self.popsize!r}")
    if not isinstance(self.generations, (int, np.integer)) or self.generations < 0:
      bad(f"generations must be an integer >= 0, got {self.generations!r}")
    if not 0 < float(self.F) <= 2:
      bad(f"F must be in (0, 2], got {self.F!r}")
    if self.crossover is not None and not 0 <= float(self.crossover) <= 1:
      bad(f"crossover must be None (no crossover, the paper's) or a rate in [0, 1], got {self.crossover!r}")
    if self.strategy not in de.STRATEGIES:
      bad(f"strategy must be one of {de.STRATEGIES}, got {self.strategy!r}")
    if self.dither is not None:
      if len(self.dither) != 2 or not 0 < self.dither[0] <= self.dither[1] <= 2:
        bad(f"dither must be None or (lo, hi) with 0 < lo <= hi <= 2, got {self.dither!r}")
      object.__setattr__(self, "dither", tuple(float(v) for v in self.dither))
    if self.early_stop not in EARLY_STOP_RULES:
      bad(f"early_stop must be one of {EARLY_STOP_RULES}, got {self.early_stop!r}")
    for name in ("target_threshold", "true_threshold"):
      if not 0 < getattr(self, name) < 1:
        bad(f"{name} must be in (0, 1), got {getattr(self, name)!r}")
    if self.method not in methods.METHODS:
      bad(f"method must be one of {methods.METHODS}, got {self.method!r}")
    if self.method in methods.ONE_PIXEL_ONLY and self.pixels != 1:
      bad(f"method {self.method!r} searches one pixel; got pixels={self.pixels}")
    if self.corner_prior is not None:
      if self.method != "learned_corners":
        bad(f"corner_prior is learned_corners' prior; method is {self.method!r}")
      try:
        corner_prior.load(self.corner_prior)
      except (OSError, ValueError, KeyError) as e:
        bad(f"corner_prior {self.corner_prior!r} is unusable: {str(e).splitlines()[0]}")
    full = self.popsize * (self.generations + 1)
    if self.query_budget is not None and (not isinstance(self.query_budget, (int, np.integer))
                                          or not 1 <= self.query_budget <= full):
      bad(f"query_budget must be None or an integer in [1, popsize x (generations + 1) = {full}], "
          f"got {self.query_budget!r}; raise generations for a larger budget")

  @property
  def max_queries(self) -> int:
    """Queries per attack at most: ``query_budget``, else ``popsize * (generations + 1)``."""
    return self.popsize * (self.generations + 1) if self.query_budget is None else int(self.query_budget)


# --------------------------------------------------------------------------
# Input checks: one clear line per problem, before anything is compiled.
# --------------------------------------------------------------------------


def _check_images(images) -> np.ndarray:
  a = np.asarray(images)
  if a.dtype != np.uint8:
    raise ValueError(f"images must be raw uint8 pixels [N, H, W, 3], got dtype {a.dtype}")
  if a.ndim != 4 or a.shape[-1] != 3:
    raise ValueError(f"images must be uint8 [N, H, W, 3] (NHWC, RGB), got shape {a.shape}")
  return a


def _check_labels(name: str, values, n: int) -> np.ndarray:
  a = np.asarray(values)
  if a.shape != (n,):
    raise ValueError(f"{name} must have shape [{n}] (one per image), got shape {a.shape}")
  if n and not np.issubdtype(a.dtype, np.integer):
    raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
  return a.astype(np.int64)


class _Predict(NamedTuple):
  fn: Callable[[Any, jax.Array], jax.Array]  # (params, uint8[n, H, W, 3]) -> float[n, C]
  params: Any
  on_host: bool
  num_classes: int
  # Optional (params, clean uint8[B, H, W, 3], perturbations int32[B, P, k, 5]) -> float[B, P, C]
  # that exploits the perturbations' sparsity (incremental inference); None: dense.
  incremental_fn: Callable | None = None


def predict_fn(predict, incremental: bool = False):
  """``(fn, params, incremental_fn)`` for any ``predict``.

  ``predict`` is a loaded model (``.apply(variables, x)`` and ``.variables``,
  optionally ``.apply_incremental(variables, clean_images, perturbations)``)
  or a callable of uint8 images. ``fn(params, uint8[n, H, W, 3]) -> float[n, C]``
  passes a model's weights as ``params`` (None for a plain callable), so that
  a jitted caller keeps them as inputs. ``incremental_fn`` is the model's
  ``apply_incremental`` when ``incremental`` and the model supports it, else None.
  """
  if hasattr(predict, "apply") and hasattr(predict, "variables"):
    inc = predict.apply_incremental if incremental and getattr(predict, "supports_incremental", False) else None
    return (lambda p, x: predict.apply(p, x)), predict.variables, inc
  if callable(predict):
    return (lambda p, x: predict(x)), None, None
  raise ValueError(f"predict must be a callable images -> probabilities or a loaded model, got {type(predict).__name__}")


def compiler_kind(predict, incremental_fn, pixels: int) -> str:
  """The compiler options' kind (``compiler.KINDS``) of a compiled evaluation
  of ``predict``: ``"dense"`` without ``incremental_fn``, else the model's
  ``incremental_kind(pixels)`` (``"incremental"`` if it has none)."""
  if incremental_fn is None:
    return "dense"
  kind = getattr(predict, "incremental_kind", None)
  return kind(pixels) if kind is not None else "incremental"


def _resolve_predict(predict, images: np.ndarray, incremental: bool = True) -> _Predict:
  """``predict_fn``, plus whether JAX can trace ``predict`` (else it runs on
  the host: NumPy, PyTorch, a service) and a check of its output on a few images."""
  fn, params, incremental_fn = predict_fn(predict, incremental)
  probe = images[: min(len(images), 8)]
  try:
    jax.eval_shape(fn, params, jax.ShapeDtypeStruct(probe.shape, jnp.uint8))
    on_host = False
  except Exception:  # not traceable by JAX: evaluate it on the host
    on_host = True
  try:
    out = np.asarray(jax.jit(fn)(params, probe) if not on_host else fn(params, probe), dtype=np.float64)
  except Exception as e:  # noqa: BLE001 - surface the user's error on one line
    raise ValueError(f"predict failed on a batch of {len(probe)} images {probe.shape}: {type(e).__name__}: {e}".splitlines()[0]) from e
  if out.ndim != 2 or out.shape[0] != len(probe) or out.shape[1] < 2:
    raise ValueError(f"predict must return probabilities [n, num_classes] for n images; for {len(probe)} images it returned shape {out.shape}")
  _check_probabilities(out)
  return _Predict(fn, params, on_host, out.shape[1], incremental_fn)


def _check_probabilities(p: np.ndarray):
  if not np.all(np.isfinite(p)):
    raise ValueError("predict returned NaN or inf")
  sums = p.sum(axis=1)
  if p.min() < -1e-4 or np.abs(sums - 1).max() > 1e-2:
    raise ValueError(
        f"predict must return probabilities (non-negative rows summing to 1), got row sums in "
        f"[{sums.min():.3g}, {sums.max():.3g}] and minimum {p.min():.3g}; apply a softmax to logits"
    )


# --------------------------------------------------------------------------
# The compiled step.
# --------------------------------------------------------------------------


class _Queue(NamedTuple):
  images: jax.Array   # uint8[M, H, W, 3]
  labels: jax.Array   # int32[M]
  targets: jax.Array  # int32[M], -1 for non-targeted
  keys: jax.Array     # uint32[M, 2]


class _Slots(NamedTuple):
  attack: jax.Array           # int32[B] queue index; M marks an empty slot
  fresh: jax.Array            # bool[B] the slot's next step is a new attack's first
  state: Any                  # the method's state, every leaf [B, ...]
  best_x: jax.Array           # float32[B, D] the incumbent: a succeeding candidate if any, else the fittest
  best_score: jax.Array       # float32[B] its fitness, minus 2 if it succeeds
  best_probs: jax.Array       # float32[B, C]
  best_fit: jax.Array         # float32[B] the lowest fitness seen (the history's quantity)
  first_success: jax.Array    # int32[B] queries up to the first succeeding candidate, 0 if none yet
  generation: jax.Array       # int32[B] step index (DE: generation)
  queries: jax.Array          # int32[B]
  fitness_history: jax.Array  # float32[B, S]
  predicted_history: jax.Array  # int32[B, S]


def _should_stop(cfg: AttackConfig, best_probs, labels, targets):
  predicted = jnp.argmax(best_probs, axis=-1)
  if cfg.early_stop == "none":
    return jnp.zeros(labels.shape, bool)
  if cfg.early_stop == "misclassify":
    return succeeded(predicted, labels, targets)
  p_target = jnp.take_along_axis(best_probs, jnp.maximum(targets, 0)[:, None], axis=1)[:, 0]
  p_true = jnp.take_along_axis(best_probs, labels[:, None], axis=1)[:, 0]
  return jnp.where(targets >= 0, p_target > cfg.target_threshold, p_true < cfg.true_threshold)


def _step(cfg: AttackConfig, method, budget: int, pred: _Predict, shard, params, queue: _Queue, slots: _Slots, nxt):
  m = queue.labels.shape[0]
  b, q = slots.best_x.shape[0], cfg.popsize
  h, w = queue.images.shape[1:3]
  active = slots.attack < m
  idx = jnp.minimum(slots.attack, m - 1)
  labels, targets, clean = queue.labels[idx], queue.targets[idx], queue.images[idx]
  init_keys, loop_keys = jnp.moveaxis(jax.vmap(jax.random.split)(queue.keys[idx]), 1, 0)
  step = jnp.where(slots.fresh, 0, slots.generation + 1)
  # Step s >= 1 draws from fold_in(loop key, s - 1) (DE's generations, as before methods existed); step 0 from
  # the init key folded with 1 (init itself uses the init key).
  step_keys = jnp.where((step == 0)[:, None], jax.vmap(jax.random.fold_in, (0, None))(init_keys, 1),
                        jax.vmap(jax.random.fold_in)(loop_keys, jnp.maximum(step - 1, 0)))

  # A fresh slot starts its new attack's state; then every slot proposes q candidates.
  # New states only on steps where some slot starts an attack (an init can sort H*W*8 pairs per slot).
  def start(state):
    fresh_state = jax.vmap(method.init)(init_keys, clean, labels, targets)
    pick = lambda new, old: jnp.where(slots.fresh.reshape((b,) + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
    return jax.tree.map(pick, fresh_state, state)

  state = jax.lax.cond(slots.fresh.any(), start, lambda s: s, slots.state)
  proposals = shard(jax.vmap(method.ask)(step_keys, state, step, clean))
  before = jnp.where(slots.fresh, 0, slots.queries)
  valid = jnp.arange(q)[None, :] < (budget - before)[:, None]  # [B, q]: queries within the budget

  # One forward pass for every slot's candidates.
  perturbations = perturb.to_perturbations(proposals, h, w)
  if pred.incremental_fn is not None:
    probs = pred.incremental_fn(params, clean, perturbations).astype(jnp.float32)
  else:
    flat = shard(perturb.apply(clean[:, None], perturbations)).reshape(b * q, h, w, 3)
    if pred.on_host:
      host = lambda x: np.asarray(pred.fn(None, np.asarray(x)), np.float32)  # noqa: E731
      probs = jax.pure_callback(host, jax.ShapeDtypeStruct((b * q, pred.num_classes), jnp.float32), flat)
    else:
      probs = pred.fn(params, flat).astype(jnp.float32)
  probs = shard(probs.reshape(b, q, pred.num_classes))
  state = jax.vmap(method.tell)(state, proposals, probs, labels, targets, valid)

  # The incumbent: succeeding candidates before the others, then by fitness.
  fit = methods.objective(probs, labels[:, None], targets[:, None])
  wins = succeeded(jnp.argmax(probs, -1), labels[:, None], targets[:, None]) & valid
  score = jnp.where(valid, fit - 2.0 * wins, jnp.inf)
  j = jnp.argmin(score, axis=1)
  rows = jnp.arange(b)
  improved = slots.fresh | (score[rows, j] < slots.best_score)
  best_score = jnp.where(improved, score[rows, j], slots.best_score)
  best_x = jnp.where(improved[:, None], proposals[rows, j], slots.best_x)
  best_probs = jnp.where(improved[:, None], probs[rows, j], slots.best_probs)
  low = jnp.min(jnp.where(valid, fit, jnp.inf), axis=1)
  best_fit = jnp.where(slots.fresh, low, jnp.minimum(slots.best_fit, low))
  first_win = jnp.argmax(wins, axis=1)  # the first succeeding query of this step
  prior = jnp.where(slots.fresh, 0, slots.first_success)
  first_success = jnp.where((prior == 0) & wins.any(1), before + first_win + 1, prior).astype(jnp.int32)
  queries = before + jnp.sum(valid, axis=1, dtype=jnp.int32)
  fh = jnp.where(slots.fresh[:, None], jnp.nan, slots.fitness_history).at[rows, step].set(best_fit)
  ph = jnp.where(slots.fresh[:, None], -1, slots.predicted_history).at[rows, step].set(
      jnp.argmax(best_probs, axis=-1).astype(jnp.int32))

  done = active & (_should_stop(cfg, best_probs, labels, targets) | (queries >= budget))
  record = dict(attack=slots.attack, done=done, best_x=best_x, best_probs=best_probs, generation=step,
                queries=queries, first_success=first_success, fitness_history=fh, predicted_history=ph,
                nonfinite=jnp.any(~jnp.isfinite(probs) & active[:, None, None]))

  # Continuous batching: finished slots take the next attacks of the queue.
  order = jnp.cumsum(done.astype(jnp.int32)) - 1
  attack = jnp.where(done, jnp.minimum(nxt + order, m), slots.attack).astype(jnp.int32)
  nxt = nxt + jnp.sum(done, dtype=jnp.int32)
  new = _Slots(attack, done, state, best_x, best_score, best_probs, best_fit, first_success, step, queries, fh, ph)
  return jax.tree.map(shard, new), nxt, record


def _empty_record(slots: _Slots):
  z = jnp.zeros_like
  return dict(attack=slots.attack, done=z(slots.fresh), best_x=slots.best_x, best_probs=slots.best_probs,
              generation=slots.generation, queries=slots.queries, first_success=slots.first_success,
              fitness_history=slots.fitness_history,
              predicted_history=slots.predicted_history, nonfinite=jnp.zeros((), bool))


def _make_chunk(cfg: AttackConfig, method, budget: int, pred: _Predict, shard, steps: int, kind: str):
  def body(carry, _):
    params, queue, slots, nxt = carry
    busy = jnp.any(slots.attack < queue.labels.shape[0])
    slots, nxt, rec = jax.lax.cond(
        busy,
        lambda s, n: _step(cfg, method, budget, pred, shard, params, queue, s, n),
        lambda s, n: (s, n, _empty_record(s)),
        slots, nxt)
    return (params, queue, slots, nxt), rec

  def chunk(params, queue, slots, nxt):
    (_, _, slots, nxt), recs = jax.lax.scan(body, (params, queue, slots, nxt), None, length=steps)
    return slots, nxt, recs

  return compiler.jit(chunk, kind)


def _chunk_key(cfg: AttackConfig, images_hw, pred: _Predict, devices, steps_per_sync: int) -> tuple:
  """Everything besides ``predict`` and the compiler options that
  :func:`_make_chunk`'s trace depends on (a learned prior by its file's path,
  modification time and size; the incremental path's trace-time switch)."""
  prior = None
  if cfg.corner_prior is not None:
    st = os.stat(cfg.corner_prior)
    prior = (os.path.abspath(cfg.corner_prior), st.st_mtime_ns, st.st_size)
  return (cfg, prior, tuple(images_hw), pred.num_classes, pred.on_host, pred.incremental_fn is not None,
          tuple(devices), int(steps_per_sync), incremental.SHORTCUTS)


def attack_keys(seed: int, ids, targets) -> np.ndarray:
  """uint32[M, 2]: the PRNG key of each attack, from (seed, id, target) alone."""
  base = jax.random.PRNGKey(seed)
  ids = jnp.asarray(np.asarray(ids, np.uint32))
  tg = jnp.asarray((np.asarray(targets) + 1).astype(np.uint32))
  return np.asarray(jax.vmap(lambda i, t: jax.random.fold_in(jax.random.fold_in(base, i), t))(ids, tg))


def process_share(num_attacks: int) -> np.ndarray:
  """Indices of the attacks this process runs when several processes share a queue
  (every ``process_count``-th attack, starting at ``process_index``)."""
  return np.arange(jax.process_index(), num_attacks, jax.process_count())


CPU_MAX_SLOTS = 50  # per CPU device; see default_batch_size


def default_batch_size(popsize: int, num_attacks: int, num_devices: int, platform: str,
                       incremental: bool = False, pixels: int = 1) -> int:
  """Slots so that one forward pass is ~1,024 images per CPU device (~4,096
  with incremental inference, whose per-query work is small enough that
  larger batches keep the CPU busier: 698 -> 834 queries/s for AllConv from
  2 to 16 slots on 2 cores), ~16,384 per accelerator.

  On CPUs at most :data:`CPU_MAX_SLOTS` slots per device: small populations
  (random search, Sparse-RS: 16 queries per step) would otherwise take 256
  slots, every attack in flight is lost to a kill, and more slots buy
  little (NiN, random search, population 16, 100 images to a 400-query
  budget, one process, interleaved, ``scripts/slot_rates.py``: 992 / 1,081
  / 1,096 and 910 / 995 / 981 queries/s at 20 / 50 / 100 slots in two runs
  on 2 cores).

  With ``pixels`` > 1 the incremental path goes dense a few layers in
  (``models.incremental.window_sizes``), so its memory per query approaches
  the dense path's: ~4,096 / ``pixels`` per CPU device, at least 1,024 (10
  slots of a 5-pixel NiN attack took 21 GB and thrashed; 2 slots take 5 GB).
  """
  if platform == "cpu":
    per_device = max(1024, 4096 // max(1, pixels)) if incremental else 1024
  else:
    per_device = 16384
  b = max(1, (per_device * num_devices) // popsize)
  if platform == "cpu":
    b = min(b, CPU_MAX_SLOTS * num_devices)
  return max(1, min(b, num_attacks))


# --------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------


def attack_iter(
    predict,
    images,
    labels,
    targets=None,
    config: AttackConfig = AttackConfig(),
    seed: int = 0,
    batch_size: int | None = None,
    *,
    ids=None,
    steps_per_sync: int = 2,
    devices=None,
    progress: bool = False,
    incremental: bool = True,
) -> Iterator[dict]:
  """Runs attacks and yields one record per attack as soon as it finishes.

  Args: as ``attack``, plus
    ids: int[N] identities of the attacks' images (default ``arange(N)``);
      an attack's randomness derives from ``(seed, ids[i], targets[i])``.
    steps_per_sync: DE generations per host round trip.
    devices: the devices to shard slots over (default: all local devices).
      With several processes (``jax.distributed``) each process runs its
      share of the attacks (``process_share``) and yields only those; the
      ``index`` of a record still refers to the caller's full inputs.
    progress: show a tqdm bar.
    incremental: use the model's ``apply_incremental`` (sparse incremental
      inference) when it has one (``supports_incremental``); False forces
      dense forward passes.
  Yields:
    one record per attack (``AttackResult.record``: ``id``, ``label``,
    ``target``, ``success``, ``predicted``, the probabilities,
    ``perturbation``, ``pixels``, ``popsize``, ``queries``, ``generations``,
    ``distortion``, the histories) plus ``index``, its position in the
    inputs. Finished attacks come in completion order.
  Raises:
    ValueError with a one-line message for bad inputs, or if predict returns
    NaN/inf mid-run (records already yielded stay valid).
  """
  for positions, done in _batches(predict, images, labels, targets, config, seed, batch_size, ids=ids,
                                  steps_per_sync=steps_per_sync, devices=devices, progress=progress,
                                  incremental=incremental):
    for j in range(len(done)):
      yield {"index": int(positions[j]), **done.record(j)}


def _batches(predict, images, labels, targets, config, seed, batch_size, *, ids, steps_per_sync, devices,
             progress, incremental) -> Iterator[tuple[np.ndarray, AttackResult]]:
  """The attacks that finish between two host syncs: ``(positions int[m] in
  the inputs, AttackResult of those m attacks)``, in completion order."""
  cfg = config
  if not isinstance(cfg, AttackConfig):
    raise ValueError(f"config must be an AttackConfig, got {type(cfg).__name__}")
  images = _check_images(images)
  n = images.shape[0]
  labels = _check_labels("labels", labels, n)
  targets = None if targets is None else _check_labels("targets", targets, n)
  ids = np.arange(n) if ids is None else _check_labels("ids", ids, n)
  if n and ids.min() < 0:
    raise ValueError("ids must be non-negative")
  if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
    raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
  positions = np.arange(n)
  if jax.process_count() > 1:
    # Several processes (jax.distributed): each runs its own share of the queue on its
    # local devices; an attack's result does not depend on which process runs it.
    mine = process_share(n)
    images, labels, ids = images[mine], labels[mine], ids[mine]
    targets = None if targets is None else targets[mine]
    n, positions = len(mine), mine
  if n == 0:
    return
  pred = _resolve_predict(predict, images, incremental)
  c = pred.num_classes
  if labels.min() < 0 or labels.max() >= c:
    raise ValueError(f"labels must be in [0, {c}) for a {c}-class model, got values in [{labels.min()}, {labels.max()}]")
  if targets is not None:
    if targets.min() < 0 or targets.max() >= c:
      raise ValueError(f"targets must be in [0, {c}) for a {c}-class model, got values in [{targets.min()}, {targets.max()}]")
    same = np.flatnonzero(targets == labels)
    if len(same):
      raise ValueError(f"target equals the true label for {len(same)} attack(s), first at index {same[0]}")
  tg = np.full(n, -1) if targets is None else targets

  devices = list(devices or jax.local_devices())
  if pred.on_host:
    devices = devices[:1]  # host callables see the whole batch at once
  ndev = len(devices)
  b = batch_size or default_batch_size(cfg.popsize, n, ndev, devices[0].platform, pred.incremental_fn is not None,
                                          cfg.pixels)
  b = ndev * math.ceil(b / ndev)
  mesh = Mesh(np.asarray(devices), ("slots",))
  slot_sharding = NamedSharding(mesh, PS("slots"))
  replicated = NamedSharding(mesh, PS())

  def shard(x):
    return jax.lax.with_sharding_constraint(x, slot_sharding) if ndev > 1 else x

  h, w = images.shape[1:3]
  d = 5 * cfg.pixels
  method = methods.make(cfg, h, w)
  budget = methods.query_budget(cfg, h, w)
  steps = methods.num_steps(cfg, h, w)
  queue = jax.device_put(_Queue(images, labels.astype(np.int32), tg.astype(np.int32), attack_keys(seed, ids, tg)),
                         replicated)
  first = np.minimum(np.arange(b), n).astype(np.int32)
  state_shape = jax.eval_shape(jax.vmap(method.init), jax.ShapeDtypeStruct((b, 2), jnp.uint32),
                               jax.ShapeDtypeStruct((b, h, w, 3), jnp.uint8), jax.ShapeDtypeStruct((b,), jnp.int32),
                               jax.ShapeDtypeStruct((b,), jnp.int32))
  slots = _Slots(
      attack=first, fresh=np.ones(b, bool), state=jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), state_shape),
      best_x=np.zeros((b, d), np.float32), best_score=np.full(b, np.inf, np.float32),
      best_probs=np.zeros((b, c), np.float32), best_fit=np.full(b, np.inf, np.float32),
      first_success=np.zeros(b, np.int32), generation=np.zeros(b, np.int32), queries=np.zeros(b, np.int32),
      fitness_history=np.full((b, steps), np.nan, np.float32), predicted_history=np.full((b, steps), -1, np.int32))
  slots = jax.device_put(slots, slot_sharding)
  nxt = jax.device_put(np.int32(min(b, n)), replicated)
  params = jax.device_put(pred.params, replicated) if pred.params is not None else None
  # Reused by later calls with the same model and settings (compiler.cached): no new compilation.
  kind = compiler_kind(predict, pred.incremental_fn, cfg.pixels)
  chunk = compiler.cached(predict, kind, _chunk_key(cfg, (h, w), pred, devices, steps_per_sync),
                          lambda: _make_chunk(cfg, method, budget, pred, shard, int(steps_per_sync), kind))

  bar = None
  if progress:
    from tqdm.auto import tqdm
    bar = tqdm(total=n, unit="attack", desc=f"{cfg.pixels}-pixel attack", smoothing=0.1)
  finished = successes = 0
  try:
    pending = chunk(params, queue, slots, nxt)
    while finished < n:
      slots, nxt, recs = pending
      pending = chunk(params, queue, slots, nxt)  # dispatched before we wait on `recs`
      recs = jax.device_get(recs)
      if recs["nonfinite"].any():
        raise ValueError(f"predict returned NaN or inf during the attack ({finished} finished attacks were already delivered)")
      t, s = np.nonzero(recs["done"])
      if not len(t):
        continue
      done = _finished(cfg, {k: v[t, s] for k, v in recs.items() if k != "nonfinite"}, images, labels, tg, ids)
      finished += len(done)
      successes += int(done.success.sum())
      if bar is not None:
        bar.update(len(done))
        bar.set_postfix(success=f"{successes / finished:.1%}")
      yield positions[recs["attack"][t, s]], done
  finally:
    if bar is not None:
      bar.close()


def _finished(cfg: AttackConfig, recs: dict, images, labels, targets, ids) -> AttackResult:
  """AttackResult of m finished slots (``recs``: the step's record arrays at those slots)."""
  i = recs["attack"]
  probs = recs["best_probs"].astype(np.float64)  # [m, C]
  rows = np.arange(len(i))
  h, w = images.shape[1:3]
  perturbation = np.asarray(perturb.to_perturbations(recs["best_x"], h, w)).astype(np.int64)
  predicted = probs.argmax(1)
  target = targets[i]
  return AttackResult(
      success=np.asarray(succeeded(predicted, labels[i], target)), predicted=predicted,
      adversarial_prob=probs[rows, predicted], true_prob=probs[rows, labels[i]],
      target_prob=np.where(target >= 0, probs[rows, np.maximum(target, 0)], np.nan), perturbation=perturbation,
      queries=recs["queries"].astype(np.int64), generations=recs["generation"].astype(np.int64),
      distortion=perturb.distortion(images[i], perturbation), labels=labels[i], targets=target, ids=ids[i],
      fitness_history=recs["fitness_history"].astype(np.float64),
      predicted_history=recs["predicted_history"].astype(np.int64), popsize=np.full(len(i), cfg.popsize),
      first_success_query=np.where(recs["first_success"] > 0, recs["first_success"], -1).astype(np.int64),
      method=np.full(len(i), cfg.method))


def attack(predict, images, labels, targets=None, config: AttackConfig = AttackConfig(), seed: int = 0,
           batch_size: int | None = None, **kwargs) -> AttackResult:
  """Runs one DE pixel attack per image and returns all outcomes.

  Args:
    predict: ``images uint8[n, H, W, 3] -> probabilities float[n, C]``: a
      jittable JAX function (compiled into the attack step), a loaded
      ``onepixel_jax.models`` model, or any Python callable (NumPy, PyTorch,
      a remote service), evaluated on the host once per generation.
    images: uint8[N, H, W, 3] raw pixels, one attack per image.
    labels: int[N] true labels.
    targets: int[N] target classes (targeted attacks), or None (non-targeted).
    config: AttackConfig (defaults: the paper's).
    seed: the attacks' randomness derives from (seed, image id, target).
    batch_size: attacks evaluated together per forward pass (slots); None
      picks about 1,024 images per CPU device or 16,384 per accelerator.
    **kwargs: ``ids``, ``steps_per_sync``, ``devices``, ``progress`` (default
      True) as in ``attack_iter``.
  Returns:
    AttackResult over the N attacks, in input order.
  """
  kwargs.setdefault("progress", True)
  options = dict(ids=None, steps_per_sync=2, devices=None, progress=True, incremental=True)
  unknown = set(kwargs) - set(options)
  if unknown:
    raise TypeError(f"attack() got unexpected keyword arguments {sorted(unknown)}")
  options.update(kwargs)
  n = len(np.asarray(labels))
  parts = list(_batches(predict, images, labels, targets, config, seed, batch_size, **options))
  if not parts:
    return AttackResult.empty(config.pixels, methods.num_steps(config, *np.asarray(images).shape[1:3]) - 1)
  positions = np.concatenate([p for p, _ in parts])
  if jax.process_count() == 1 and len(positions) != n:
    raise RuntimeError(f"internal error: {len(positions)} results for {n} attacks")
  return AttackResult.concatenate([r for _, r in parts]).take(np.argsort(positions, kind="stable"))
