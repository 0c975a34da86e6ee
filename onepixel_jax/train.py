"""Training library for the CIFAR-10 networks (flax examples style).

``train_and_evaluate(config, workdir)`` trains ``config.model`` on the
CIFAR-10 training split minus a held-out validation split (``config.num_val``
images taken from the *training* set with a fixed seed), evaluates on the
validation split after every epoch, and touches the test split only once, at
the end. Everything random derives from one ``PRNGKey(config.seed)`` split
once into init / data / step keys; the step key is ``fold_in(key, step)`` and
the batch order of epoch ``e`` is ``permutation(fold_in(data_key, e))``, so a
run killed and resumed from its last checkpoint (``workdir/checkpoints``,
orbax) continues exactly as an uninterrupted one. ``config.init_from`` (a
``.msgpack`` written by :func:`export`, e.g. a bundled checkpoint) starts a
*new* run from those weights with a fresh optimiser and schedule, so training
can continue across machines and sessions; the exported metadata's
``lineage`` lists every stage (command, epochs, seconds, hardware) and
``total_training_seconds`` / ``total_epochs`` their sums. With
``config.average_epochs = N`` the run also keeps its weights after each of
the last N epochs (``workdir/epoch_weights``) and exports their mean, batch
norm statistics recomputed (stochastic weight averaging, Izmailov et al.
2018; airbench and hlb-CIFAR10 use an EMA of the weights to the same end).
The training step
and evaluation are compiled with :mod:`onepixel_jax.compiler`'s options.
Per-epoch metrics are
appended to ``workdir/metrics.jsonl``; the final test numbers go to
``workdir/final.json``, and with ``config.export_path`` set the weights are
exported through :func:`onepixel_jax.models.save_checkpoint`.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state
from tqdm import tqdm

from onepixel_jax import compiler
from onepixel_jax import data as data_lib
from onepixel_jax import models
from onepixel_jax.models import cifar as cifar_models
from onepixel_jax.paper.reproduce import PAPER


# sha256 of ../shared/data/cifar10-jpeg.tar.gz (see shared/data/README.md).
SHARED_TARBALL_SHA256 = "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"


def default_config(model: str) -> ml_collections.ConfigDict:
  """The training config of ``model`` (experiments/configs/<model>.py start
  from it). The schedule is a short one for CPUs, the paper's architectures
  unchanged: one-cycle Nesterov SGD at batch 128, label smoothing 0.2 and
  +-2-pixel translations, the choices airbench (Jordan 2024) found best for
  ~10-epoch CIFAR-10 training. ``num_epochs=60, label_smoothing=0.1,
  crop_padding=4`` is the longer GPU schedule.
  """
  c = ml_collections.ConfigDict()
  c.model = model
  c.data = ""                 # "" = $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz; "tfds"; a path
  c.seed = 0
  c.num_val = data_lib.NUM_VAL  # held out from the TRAINING split for per-epoch evaluation
  c.val_seed = data_lib.VAL_SEED
  c.batch_size = 128          # XLA:CPU's training step is no faster per image at 256 or 512
  c.eval_batch_size = 500
  c.num_epochs = 12
  c.learning_rate = 0.1       # peak of the one-cycle (warm-up + cosine to 0) schedule
  c.warmup_fraction = 0.15
  c.warmup_init_factor = 0.04
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.label_smoothing = 0.2
  c.crop_padding = 2          # random translation by up to 2 pixels (zero fill)
  c.init_from = ""            # a .msgpack (e.g. the bundled one): start from its weights, fresh schedule
  c.checkpoint_every_steps = 100
  c.max_to_keep = 2
  c.progress_interval = 60.0  # seconds between tqdm refreshes (keeps logs short)
  c.export = True             # write onepixel_jax/weights/<model>.msgpack at the end
  c.export_path = ""          # "" = onepixel_jax/weights/<model>.msgpack
  c.fp16_tolerance = 0.0005   # store float16 unless it costs more test accuracy than this
  c.average_epochs = 0        # >0: export the mean of the weights after the last N epochs (SWA)
  return c


class TrainState(train_state.TrainState):
  batch_stats: Any


# ---------------------------------------------------------------- pure parts

def augment(rng: jax.Array, images: jnp.ndarray, pad: int = 4) -> jnp.ndarray:
  """Random crop with ``pad``-pixel zero padding and random horizontal flip.

  images: uint8[N, H, W, C] -> uint8[N, H, W, C].
  """
  n, h, w, c = images.shape
  if pad == 0:
    padded = images
  else:
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  k_crop, k_flip = jax.random.split(rng)
  offs = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
  crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))
  out = crop(padded, offs)
  flip = jax.random.bernoulli(k_flip, 0.5, (n,))
  return jnp.where(flip[:, None, None, None], out[:, :, ::-1, :], out)


def make_schedule(config, steps_per_epoch: int):
  """Linear warm-up to ``learning_rate`` then cosine decay to 0 (one cycle)."""
  warmup = max(1, int(config.warmup_fraction * config.num_epochs * steps_per_epoch))
  total = max(warmup + 1, config.num_epochs * steps_per_epoch)  # optax needs a decay phase of >= 1 step
  return optax.warmup_cosine_decay_schedule(
      init_value=config.learning_rate * config.warmup_init_factor,
      peak_value=config.learning_rate, warmup_steps=warmup,
      decay_steps=total, end_value=0.0)


def make_optimizer(config, steps_per_epoch: int):
  """SGD with Nesterov momentum and L2 weight decay on conv/dense kernels."""
  schedule = make_schedule(config, steps_per_epoch)
  decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim > 1, params)
  return optax.chain(
      optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
      optax.sgd(schedule, momentum=config.momentum, nesterov=config.nesterov))


def create_state(module: nn.Module, rng: jax.Array, tx) -> TrainState:
  variables = models.init_variables(module, rng)
  return TrainState.create(apply_fn=module.apply, params=variables["params"],
                           batch_stats=variables["batch_stats"], tx=tx)


def gradients(state: TrainState, images, labels, rng, *, num_classes: int,
              label_smoothing: float):
  """Forward and backward pass on augmented ``images``: (grads, new batch
  statistics, loss, logits float32[N, C])."""

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, images, train=True,
        rngs={"dropout": rng}, mutable=["batch_stats"])
    logits = logits.astype(jnp.float32)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    return loss, (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return grads, updates.get("batch_stats", {}), loss, logits  # {} without batch norm (ConvSmall)


def train_step(state: TrainState, images, labels, rng, *, num_classes: int,
               label_smoothing: float, pad: int):
  """One SGD step (augmentation inside). Returns (state, metrics)."""
  k_aug, k_drop = jax.random.split(rng)
  images = augment(k_aug, images, pad)
  grads, batch_stats, loss, logits = gradients(
      state, images, labels, k_drop, num_classes=num_classes, label_smoothing=label_smoothing)
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  acc = jnp.mean(jnp.argmax(logits, -1) == labels)
  return state, {"loss": loss, "accuracy": acc}


def eval_step(module: nn.Module, variables, images, labels, mask):
  """Sums of correct predictions, cross-entropy and count over ``mask``."""
  logits = module.apply(variables, images, train=False)
  correct = (jnp.argmax(logits, -1) == labels) * mask
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels) * mask
  return {"correct": correct.sum(), "loss": ce.sum(), "count": mask.sum()}


def average_weights(trees: list):
  """The leaf-wise mean of same-shaped weight trees (stochastic weight
  averaging, Izmailov et al. 2018)."""
  if not trees:
    raise ValueError("average_weights needs at least one weight tree")
  return jax.tree_util.tree_map(lambda *a: sum(np.asarray(x, np.float32) for x in a) / len(a),
                                *trees)


def recompute_batch_stats(module: nn.Module, variables, images, batch_size: int,
                          rng: jax.Array, pad: int | None = None) -> dict:
  """``variables`` with every batch norm's running statistics replaced by the
  mean over ``images`` (uint8[N, H, W, 3], cut into ``N // batch_size`` whole
  batches) of the per-batch mean and variance that training mode normalises
  with, dropout on and, with ``pad`` set, the training augmentation
  (:func:`augment`) too, as in training: what averaged weights need, since
  the running statistics of the averaged networks do not belong to their
  average (SWA's ``bn_update``, which also reads augmented training batches).
  """
  n = len(images) // batch_size
  if n == 0:
    raise ValueError(f"recompute_batch_stats needs at least one batch of {batch_size} images, "
                     f"got {len(images)}")
  zeros = jax.tree_util.tree_map(jnp.zeros_like, variables["batch_stats"])

  @jax.jit
  def batch_statistics(params, x, key):
    k_aug, k_drop = jax.random.split(key)
    x = x if pad is None else augment(k_aug, x, pad)
    # From zero running statistics one update leaves (1 - momentum) * the batch's.
    _, upd = module.apply({"params": params, "batch_stats": zeros}, x, train=True,
                          rngs={"dropout": k_drop}, mutable=["batch_stats"])
    return jax.tree_util.tree_map(lambda a: a / (1.0 - cifar_models.BN_MOMENTUM),
                                  upd["batch_stats"])

  total = None
  for i in range(n):
    b = batch_statistics(variables["params"], images[i * batch_size:(i + 1) * batch_size],
                         jax.random.fold_in(rng, i))
    total = b if total is None else jax.tree_util.tree_map(jnp.add, total, b)
  return {"params": variables["params"],
          "batch_stats": jax.tree_util.tree_map(lambda a: np.asarray(a / n), total)}


# ------------------------------------------------------------ orchestration

split_train_val = data_lib.split_train_val  # the held-out validation split (one definition, in data)


def evaluate(module, variables, images, labels, batch_size: int = 500,
             _cache: dict = {}) -> dict:
  """Accuracy and mean cross-entropy over all images (padded last batch)."""
  key = id(module), batch_size
  if key not in _cache:
    _cache.clear()
    _cache[key] = compiler.jit(lambda v, x, y, m: eval_step(module, v, x, y, m), "dense")
  fn = _cache[key]
  tot = {"correct": 0.0, "loss": 0.0, "count": 0.0}
  n = len(labels)
  for s in range(0, n, batch_size):
    x, y = images[s:s + batch_size], labels[s:s + batch_size]
    k = len(y)
    m = np.ones(batch_size, np.float32)
    if k < batch_size:
      m[k:] = 0
      x = np.concatenate([x, np.zeros((batch_size - k, *x.shape[1:]), x.dtype)])
      y = np.concatenate([y, np.zeros(batch_size - k, y.dtype)])
    out = fn(variables, x, y, m)
    for kk in tot:
      tot[kk] += float(out[kk])
  return {"accuracy": tot["correct"] / max(tot["count"], 1),
          "loss": tot["loss"] / max(tot["count"], 1), "count": int(tot["count"])}


def _batch_indices(data_rng, epoch: int, n: int, batch_size: int, i: int) -> np.ndarray:
  perm = np.asarray(jax.random.permutation(jax.random.fold_in(data_rng, epoch), n))
  return perm[i * batch_size:(i + 1) * batch_size]


def _checkpoint_manager(workdir, max_to_keep: int = 2):
  return ocp.CheckpointManager(
      pathlib.Path(workdir).resolve() / "checkpoints",
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def _to_ckpt(state: TrainState, train_seconds: float) -> dict:
  return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
          "opt_state": state.opt_state,
          "train_seconds": np.asarray(train_seconds, np.float64)}


def restore_latest(workdir, state: TrainState, max_to_keep: int = 2):
  """(state, train_seconds) from the newest checkpoint, or (state, 0.0)."""
  mgr = _checkpoint_manager(workdir, max_to_keep)
  step = mgr.latest_step()
  if step is None:
    mgr.close()
    return state, 0.0
  target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _to_ckpt(state, 0.0))
  ck = mgr.restore(step, args=ocp.args.StandardRestore(target))
  mgr.close()
  state = state.replace(step=ck["step"], params=ck["params"],
                        batch_stats=ck["batch_stats"], opt_state=ck["opt_state"])
  return state, float(ck["train_seconds"])


def init_variables_from(config) -> dict | None:
  """``{'params', 'batch_stats'}`` of ``config.init_from`` (float32), or None
  when it is unset. The file must hold ``config.model``'s architecture."""
  if not config.init_from:
    return None
  return dict(models.load(config.model, checkpoint=config.init_from).variables)


INIT_META = "init_from.json"  # the init_from checkpoint's metadata, copied into the workdir


def _init_metadata(config) -> dict:
  meta_path = pathlib.Path(config.init_from).with_suffix(".json")
  if not meta_path.is_file():
    raise ValueError(f"init_from checkpoint {config.init_from} has no metadata {meta_path}; "
                     "its lineage cannot be recorded")
  return json.loads(meta_path.read_text())


def lineage(config, stage: dict, workdir=None) -> list[dict]:
  """Every training stage that led to a checkpoint, oldest first: the stages
  recorded beside ``config.init_from`` (its metadata's ``lineage``, or one
  stage made from its metadata when it has none), then ``stage``. The
  metadata is read from the copy :func:`train` left in ``workdir`` (the file
  beside ``init_from`` may since have been overwritten by the export)."""
  if not config.init_from:
    return [stage]
  copy = pathlib.Path(workdir or ".") / INIT_META
  prev = json.loads(copy.read_text()) if workdir and copy.is_file() else _init_metadata(config)
  stages = prev.get("lineage") or [{
      "command": prev.get("command", ""), "epochs": prev.get("epochs_completed", prev.get("epochs")),
      "steps": prev.get("steps"), "training_seconds": prev.get("training_seconds"),
      "hardware": prev.get("hardware"), "init_from": None,
      "test_accuracy": prev.get("test_accuracy"), "exported": prev.get("exported")}]
  return [*stages, {**stage, "init_from_sha256": prev.get("sha256")}]


EPOCH_WEIGHTS = "epoch_weights"  # workdir folder of the weights config.average_epochs averages


def averaged_epochs(config) -> list[int]:
  """The epochs whose final weights ``config.average_epochs`` averages: the
  last ``average_epochs`` of ``num_epochs`` ([] when 0)."""
  k = config.average_epochs
  if not 0 <= k <= config.num_epochs:
    raise ValueError(f"average_epochs={k} must be between 0 and num_epochs={config.num_epochs}")
  return list(range(config.num_epochs - k + 1, config.num_epochs + 1))


def epoch_weights_path(workdir, epoch: int) -> pathlib.Path:
  return pathlib.Path(workdir) / EPOCH_WEIGHTS / f"epoch_{epoch:03d}.msgpack"


def averaged_variables(config, workdir, module: nn.Module, train_images) -> tuple[dict, list[int]]:
  """(variables, epochs): the mean of the weights :func:`train` saved after
  each of :func:`averaged_epochs`, batch-norm statistics recomputed on
  ``train_images`` (uint8[N, 32, 32, 3]) in batches of ``config.batch_size``,
  augmented as in training."""
  epochs = averaged_epochs(config)
  paths = [epoch_weights_path(workdir, e) for e in epochs]
  missing = [e for e, q in zip(epochs, paths) if not q.is_file()]
  if missing:
    raise ValueError(
        f"average_epochs={config.average_epochs} needs the weights saved after epochs {epochs} "
        f"in {pathlib.Path(workdir) / EPOCH_WEIGHTS}, but epochs {missing} are missing "
        f"(a run saves them only when trained with --config.average_epochs)")
  mean = average_weights([dict(models.load(config.model, checkpoint=q).variables)
                          for q in paths])
  key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[3]  # beside init, data, step
  return recompute_batch_stats(module, mean, train_images, config.batch_size, key,
                               pad=config.crop_padding), epochs


def load_data(config):
  """(train, val) from ``config.data`` ("tfds" or a path; '' = default tarball)."""
  source = config.data or str(data_lib.default_tarball())
  images, labels = data_lib.load_cifar10(source, "train")
  return split_train_val(images, labels, config.num_val, config.val_seed)


def _append_jsonl(path, record):
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")


def _logged_epochs(path) -> set:
  if not os.path.exists(path):
    return set()
  with open(path) as f:
    return {json.loads(l)["epoch"] for l in f if l.strip()}


def train(config, workdir, train_data, val_data, module: nn.Module | None = None,
          max_steps: int | None = None):
  """Trains (resuming from workdir) and returns the final TrainState.

  ``max_steps`` stops early (after that global step, checkpointing it): used
  by tests to simulate a kill.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  module = module if module is not None else models.create(config.model)
  x_tr, y_tr = train_data
  n = len(y_tr)
  bs = config.batch_size
  steps_per_epoch = n // bs
  if steps_per_epoch == 0:
    raise ValueError(f"batch_size {bs} exceeds the {n} training images")
  total_steps = config.num_epochs * steps_per_epoch

  rng = jax.random.PRNGKey(config.seed)
  init_rng, data_rng, step_rng = jax.random.split(rng, 3)
  tx = make_optimizer(config, steps_per_epoch)
  state = create_state(module, init_rng, tx)
  init = init_variables_from(config)
  if init is not None:
    state = state.replace(params=init["params"], batch_stats=init["batch_stats"])
    if not (workdir / INIT_META).is_file():
      (workdir / INIT_META).write_text(json.dumps(_init_metadata(config), indent=2))
  state, train_seconds = restore_latest(workdir, state, config.max_to_keep)
  start = int(state.step)
  if start:
    print(f"resumed from step {start}/{total_steps} in {workdir}", flush=True)
  elif init is not None:
    print(f"starting from the weights of {config.init_from} (fresh optimiser and schedule)",
          flush=True)

  step_fn = compiler.jit(lambda s, x, y, r: train_step(
      s, x, y, r, num_classes=module.num_classes if hasattr(module, "num_classes") else 10,
      label_smoothing=config.label_smoothing, pad=config.crop_padding),
      "train", donate_argnums=(0,))
  mgr = _checkpoint_manager(workdir, config.max_to_keep)
  metrics_path = workdir / "metrics.jsonl"
  done_epochs = _logged_epochs(metrics_path)
  end = total_steps if max_steps is None else min(total_steps, max_steps)
  schedule = make_schedule(config, steps_per_epoch)
  keep_epochs = set(averaged_epochs(config))

  ep_loss, ep_acc, ep_count = 0.0, 0.0, 0
  perm_epoch, perm = None, None
  bar = tqdm(total=total_steps, initial=start, desc=config.model, unit="step",
             mininterval=config.progress_interval, dynamic_ncols=False, ascii=True)
  t_last = time.time()
  for step in range(start, end):
    epoch, i = divmod(step, steps_per_epoch)
    if perm_epoch != epoch:
      perm = np.asarray(jax.random.permutation(jax.random.fold_in(data_rng, epoch), n))
      perm_epoch = epoch
    idx = perm[i * bs:(i + 1) * bs]
    state, m = step_fn(state, x_tr[idx], y_tr[idx], jax.random.fold_in(step_rng, step))
    ep_loss += float(m["loss"])
    ep_acc += float(m["accuracy"])
    ep_count += 1
    now = time.time()
    train_seconds += now - t_last
    t_last = now
    bar.update(1)
    bar.set_postfix(loss=f"{ep_loss / ep_count:.3f}", acc=f"{ep_acc / ep_count:.3f}",
                    refresh=False)
    done = step + 1
    epoch_end = done % steps_per_epoch == 0
    if epoch_end:
      ep = done // steps_per_epoch
      if ep not in done_epochs:
        val = evaluate(module, {"params": state.params, "batch_stats": state.batch_stats},
                       *val_data, config.eval_batch_size)
        rec = {"epoch": ep, "step": done, "lr": float(schedule(done - 1)),
               "train_loss": ep_loss / ep_count, "train_accuracy": ep_acc / ep_count,
               "train_batches": ep_count, "val_loss": val["loss"],
               "val_accuracy": val["accuracy"], "train_seconds": train_seconds,
               "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _append_jsonl(metrics_path, rec)
        bar.write(f"epoch {ep}/{config.num_epochs} step {done}: train loss "
                  f"{rec['train_loss']:.4f} acc {rec['train_accuracy']:.4f} | val loss "
                  f"{val['loss']:.4f} acc {val['accuracy']:.4f} | {train_seconds / 60:.1f} min")
        sys.stdout.flush()
      if ep in keep_epochs:  # written before the checkpoint, so a resumed run rewrites it
        models.save_checkpoint({"params": state.params, "batch_stats": state.batch_stats},
                               epoch_weights_path(workdir, ep), {"epoch": ep, "step": done},
                               dtype=np.float32)
      ep_loss, ep_acc, ep_count = 0.0, 0.0, 0
      t_last = time.time()
    if epoch_end or done % config.checkpoint_every_steps == 0 or done == end:
      mgr.save(done, args=ocp.args.StandardSave(_to_ckpt(state, train_seconds)))
  bar.close()
  mgr.wait_until_finished()
  mgr.close()
  return state, train_seconds


def hardware() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  devs = ", ".join(sorted({d.device_kind for d in jax.devices()}))
  return f"{cpu}; {os.cpu_count()} CPU cores visible; jax {jax.__version__} on {devs}"


def as_stored(variables, dtype) -> dict:
  """``variables`` rounded to ``dtype`` (how a bundle stores them), back in float32."""
  return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype).astype(jnp.float32), variables)


def final_evaluation(config, module, variables) -> dict:
  """Test-split accuracy (used once, at the end) and on the 20 lossless
  foolbox images; float32 weights and float16-rounded weights."""
  source = config.data or str(data_lib.default_tarball())
  x_te, y_te = data_lib.load_cifar10(source, "test")
  v16 = as_stored(variables, jnp.float16)
  out = {"test_source": source, "test_count": int(len(y_te))}
  for tag, v in (("float32", variables), ("float16", v16)):
    out[f"test_accuracy_{tag}"] = evaluate(module, v, x_te, y_te, config.eval_batch_size)["accuracy"]
  try:
    xs, ys = data_lib.load_cifar10("samples")
    for tag, v in (("float32", variables), ("float16", v16)):
      out[f"samples_accuracy_{tag}"] = evaluate(module, v, xs, ys, 20)["accuracy"]
  except ValueError as e:
    out["samples_error"] = str(e)
  return out


def export(config, workdir, command: str = "", out_path=None, val_data=None,
           train_data=None) -> dict:
  """Evaluates the newest checkpoint in ``workdir`` (with
  ``config.average_epochs``, the :func:`averaged_variables` instead) and
  writes the bundled weights (``out_path`` or ``config.export_path``) plus
  metadata. ``val_data``, ``train_data``: the held-out and training
  (images, labels), loaded here when needed and None.

  Stores float16 unless that loses more than ``config.fp16_tolerance``
  test accuracy relative to float32. Returns the metadata.
  """
  workdir = pathlib.Path(workdir)
  module = models.create(config.model)
  tx = make_optimizer(config, 1)
  state = create_state(module, jax.random.PRNGKey(0), tx)
  state, train_seconds = restore_latest(workdir, state, config.max_to_keep)
  if int(state.step) == 0:
    raise ValueError(f"no checkpoint in {workdir}/checkpoints to export")
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  averaged = None
  if config.average_epochs:
    if train_data is None or val_data is None:
      loaded = load_data(config)
      train_data, val_data = train_data or loaded[0], val_data or loaded[1]
    variables, averaged = averaged_variables(config, workdir, module, train_data[0])
  res = final_evaluation(config, module, variables)
  use16 = (res["test_accuracy_float32"] - res["test_accuracy_float16"]) <= config.fp16_tolerance
  tag = "float16" if use16 else "float32"
  val = evaluate(module, as_stored(variables, np.float16 if use16 else np.float32),
                 *(val_data or load_data(config)[1]), config.eval_batch_size)
  source = config.data or str(data_lib.default_tarball())
  data_sha = (data_lib.sha256_file(source) if os.path.isfile(source) else None)
  epochs_logged = sorted(_logged_epochs(workdir / "metrics.jsonl"))
  commands_file = workdir / "commands.txt"
  training_command = (commands_file.read_text().splitlines()[0]
                      if commands_file.is_file() else "")
  epochs_completed = epochs_logged[-1] if epochs_logged else 0
  stages = lineage(config, {
      "command": training_command or command, "epochs": epochs_completed,
      "steps": int(state.step), "training_seconds": round(train_seconds, 1),
      "hardware": hardware(), "init_from": config.init_from or None,
      "test_accuracy": res[f"test_accuracy_{tag}"], "averaged_epochs": averaged,
      "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, workdir)
  meta = {
      "model": config.model,
      "test_accuracy": res[f"test_accuracy_{tag}"],
      "test_accuracy_float32": res["test_accuracy_float32"],
      "test_accuracy_float16": res["test_accuracy_float16"],
      "test_set": (f"the {res['test_count']} test images of {os.path.basename(source)}"
                   + (" (lossy JPEG copy of the CIFAR-10 test set)"
                      if data_sha == SHARED_TARBALL_SHA256 else "")),
      "samples_accuracy": res.get(f"samples_accuracy_{tag}"),
      "samples_set": "the 20 lossless CIFAR-10 test images shipped in foolbox 3.3.4",
      "paper_test_accuracy": PAPER["accuracy"].get(config.model),
      "val_accuracy": val["accuracy"],
      "val_set": (f"the {val['count']} held-out training images (val_seed {config.val_seed}), "
                  "never trained on"),
      "trained_on": (f"train split of {os.path.basename(source)} minus {config.num_val} "
                     f"held-out validation images (val_seed {config.val_seed})"),
      "data_sha256": data_sha,
      "command": training_command or command,
      "export_command": command,
      "config": config.to_dict(),
      "epochs": config.num_epochs,
      "epochs_completed": epochs_completed,
      "steps": int(state.step),
      "averaged_epochs": averaged,
      "training_seconds": round(train_seconds, 1),
      "lineage": stages,
      "total_epochs": sum(st["epochs"] or 0 for st in stages),
      "total_training_seconds": round(sum(st["training_seconds"] or 0 for st in stages), 1),
      "hardware": hardware(),
      "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  if "samples_error" in res:
    meta["samples_error"] = res["samples_error"]
  out_path = out_path or config.export_path or str(models.WEIGHTS_DIR / f"{config.model}.msgpack")
  models.save_checkpoint(variables, out_path, meta,
                         dtype=np.float16 if use16 else np.float32)
  meta = json.loads(pathlib.Path(out_path).with_suffix(".json").read_text())
  return meta


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       command: str = "") -> dict:
  """Trains ``config.model`` (resuming), then evaluates the test split once,
  writes ``workdir/final.json`` and, if ``config.export``, exports."""
  t0 = time.time()
  train_data, val_data = load_data(config)
  print(f"data: {len(train_data[1])} train / {len(val_data[1])} val images "
        f"({time.time() - t0:.1f} s); {hardware()}", flush=True)
  module = models.create(config.model)
  pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
  if command:  # the export reads the first (the training) command back
    with open(pathlib.Path(workdir) / "commands.txt", "a") as f:
      f.write(command + "\n")
  state, train_seconds = train(config, workdir, train_data, val_data, module)
  if config.export:
    meta = export(config, workdir, command, val_data=val_data, train_data=train_data)
  else:
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    meta = final_evaluation(config, module, variables)
    meta["training_seconds"] = train_seconds
  with open(pathlib.Path(workdir) / "final.json", "w") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  print("final: " + json.dumps({k: meta.get(k) for k in (
      "test_accuracy", "test_accuracy_float32", "test_accuracy_float16",
      "samples_accuracy", "training_seconds")}), flush=True)
  return meta
