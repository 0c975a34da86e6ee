"""Training library: augmentation, a two-step AllConv smoke test, checkpoint
round trip and exact resume (on a tiny module to stay fast)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.allconv import get_config
from onepixel_jax import models, train
from onepixel_jax.models.cifar import ConvBN, preprocess


class Tiny(nn.Module):
  """Same ingredients as the paper's nets (BN, dropout, uint8 input), tiny."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, images, train: bool):
    x = ConvBN(4, 3, stride=2)(preprocess(images), train)
    x = nn.Dropout(0.3, deterministic=not train)(x)
    x = nn.Conv(self.num_classes, (1, 1))(x)
    return jnp.mean(x, axis=(1, 2))


def _data(n, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
          rng.integers(0, 10, n).astype(np.int32))


def _config(**kw):
  c = get_config()
  c.batch_size, c.num_epochs, c.num_val, c.eval_batch_size = 4, 2, 4, 4
  c.checkpoint_every_steps, c.progress_interval = 2, 0.0
  c.update(kw)
  return c


def test_augment_keeps_shape_and_pixels():
  x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
  out = train.augment(jax.random.key(0), x)
  assert out.shape == x.shape and out.dtype == jnp.uint8
  np.testing.assert_array_equal(out, train.augment(jax.random.key(0), x))
  same = np.asarray(train.augment(jax.random.key(1), x, pad=0))
  for a, b in zip(same, x):  # pad 0: identity or a horizontal flip
    assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])


def test_split_train_val_is_disjoint_and_deterministic():
  x, y = _data(20)
  (xt, yt), (xv, yv) = train.split_train_val(x, y, 5, seed=0)
  (xt2, _), (xv2, _) = train.split_train_val(x, y, 5, seed=0)
  assert len(yt) == 15 and len(yv) == 5
  np.testing.assert_array_equal(xv, xv2)
  rows = {r.tobytes() for r in xt}
  assert not any(r.tobytes() in rows for r in xv)


def test_two_allconv_steps():
  config = _config()
  module = models.create("allconv")
  state = train.create_state(module, jax.random.PRNGKey(0), train.make_optimizer(config, 10))
  x, y = _data(4)
  step = jax.jit(lambda s, r: train.train_step(s, x, y, r, num_classes=10,
                                               label_smoothing=0.1, pad=4))
  p0, b0 = state.params, state.batch_stats
  for i in range(2):
    state, m = step(state, jax.random.PRNGKey(i))
    assert np.isfinite(float(m["loss"]))
  assert int(state.step) == 2
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), p0, state.params)
  assert all(jax.tree_util.tree_leaves(changed))
  assert not np.allclose(b0["ConvBN_0"]["BatchNorm_0"]["mean"],
                         state.batch_stats["ConvBN_0"]["BatchNorm_0"]["mean"])


def _equal_trees(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_checkpoint_round_trip_and_exact_resume(tmp_path):
  config = _config()
  x, y = _data(20)
  tr, val = train.split_train_val(x, y, config.num_val, config.val_seed)  # 16 train: 4 steps/epoch

  full, _ = train.train(config, tmp_path / "full", tr, val, module=Tiny())
  assert int(full.step) == 8

  # Killed after step 3 (checkpointed), then resumed in a new process' worth of state.
  part, _ = train.train(config, tmp_path / "resumed", tr, val, module=Tiny(), max_steps=3)
  assert int(part.step) == 3
  restored, secs = train.restore_latest(
      tmp_path / "resumed",
      train.create_state(Tiny(), jax.random.PRNGKey(9), train.make_optimizer(config, 4)))
  assert int(restored.step) == 3 and secs > 0
  _equal_trees(part.params, restored.params)
  _equal_trees(part.batch_stats, restored.batch_stats)
  _equal_trees(part.opt_state, restored.opt_state)

  resumed, _ = train.train(config, tmp_path / "resumed", tr, val, module=Tiny())
  assert int(resumed.step) == 8
  _equal_trees(full.params, resumed.params)
  _equal_trees(full.batch_stats, resumed.batch_stats)

  lines = [json.loads(l) for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in lines] == [1, 2]
  assert all(np.isfinite(r["val_loss"]) and 0 <= r["val_accuracy"] <= 1 for r in lines)
  full_lines = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
  assert [r["val_accuracy"] for r in lines] == [r["val_accuracy"] for r in full_lines]


def test_schedule_anneals_to_zero():
  config = _config(num_epochs=3, warmup_fraction=0.2, learning_rate=0.2)
  sched = train.make_schedule(config, 10)
  assert float(sched(0)) == pytest.approx(0.2 * config.warmup_init_factor)
  assert float(sched(6)) == pytest.approx(0.2)
  assert float(sched(30)) == pytest.approx(0.0, abs=1e-8)


def test_one_step_schedule_is_valid():
  """A one-epoch run exports through make_optimizer(config, 1): one step in all."""
  sched = train.make_schedule(_config(num_epochs=1, learning_rate=0.1), 1)
  assert float(sched(1)) == pytest.approx(0.1)
  assert float(sched(2)) == pytest.approx(0.0, abs=1e-8)


def _image_tree(root):
  """A CIFAR-10-style folder tree: 4 test and 8 training PNGs of two classes."""
  from PIL import Image
  from onepixel_jax import data
  rng = np.random.default_rng(0)
  for split, n in (("test", 2), ("train", 4)):
    for c in data.CIFAR10_CLASSES[:2]:
      d = root / split / c
      d.mkdir(parents=True)
      for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
  return str(root)


def test_export_writes_a_loadable_bundle(tmp_path, monkeypatch):
  monkeypatch.setenv("ONEPIXEL_CACHE", str(tmp_path / "cache"))
  _image_tree(tmp_path / "tree")
  config = _config(data=str(tmp_path / "tree"), export_path=str(tmp_path / "w" / "allconv.msgpack"))
  module = models.create("allconv")
  state = train.create_state(module, jax.random.PRNGKey(0), train.make_optimizer(config, 1))
  mgr = train._checkpoint_manager(tmp_path / "wd")
  mgr.save(1, args=train.ocp.args.StandardSave(train._to_ckpt(state.replace(step=1), 12.5)))
  mgr.wait_until_finished()
  mgr.close()
  (tmp_path / "wd" / "commands.txt").write_text("python -m experiments.train --the-command\n")
  meta = train.export(config, tmp_path / "wd", command="python -m experiments.train --export")
  assert meta["command"] == "python -m experiments.train --the-command"
  assert meta["training_seconds"] == 12.5 and meta["steps"] == 1
  assert 0 <= meta["test_accuracy"] <= 1 and 0 <= meta["samples_accuracy"] <= 1
  assert "4 test images of tree" in meta["test_set"]
  # The held-out validation accuracy (what a checkpoint is shipped on), of the
  # stored weights, and the paper's accuracy for this network.
  (xv, yv) = train.load_data(config)[1]
  stored = models.load("allconv", config.export_path).variables
  assert meta["val_accuracy"] == train.evaluate(module, stored, xv, yv, 4)["accuracy"]
  assert meta["val_set"].startswith("the 4 held-out training images (val_seed 0)")
  assert meta["paper_test_accuracy"] == 0.856
  # train_and_evaluate hands over the split it already holds, which is used.
  again = train.export(config, tmp_path / "wd", out_path=str(tmp_path / "w2" / "allconv.msgpack"),
                       val_data=(xv[:2], yv[:2]))
  assert again["val_set"].startswith("the 2 held-out") and again["sha256"] == meta["sha256"]
  assert again["val_accuracy"] == train.evaluate(module, stored, xv[:2], yv[:2], 4)["accuracy"]
  loaded = models.load("allconv", config.export_path)
  assert loaded.predict(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 10)


def test_continuation_from_a_checkpoint_records_lineage(tmp_path):
  """init_from starts a new run from a checkpoint's weights (fresh schedule),
  deterministically given the seed, and the lineage lists both stages."""
  module = models.create("allconv")
  first = tmp_path / "first.msgpack"
  v0 = models.init_variables(module, jax.random.PRNGKey(3))
  digest = models.save_checkpoint(v0, first, {
      "command": "python -m experiments.train --stage=one", "epochs_completed": 2, "steps": 702,
      "training_seconds": 100.0, "hardware": "test cpu", "test_accuracy": 0.5}, dtype=np.float32)
  config = _config(init_from=str(first), num_epochs=1, batch_size=4, num_val=4)
  x, y = _data(12)
  tr, val = train.split_train_val(x, y, config.num_val, config.val_seed)  # 8 train: 2 steps

  start, _ = train.train(config, tmp_path / "start", tr, val, max_steps=0)
  _equal_trees(start.params, v0["params"])  # the run starts from the file, not a fresh init
  a, _ = train.train(config, tmp_path / "a", tr, val)
  b, _ = train.train(config, tmp_path / "b", tr, val)
  assert int(a.step) == 2
  _equal_trees(a.params, b.params)
  assert not np.array_equal(a.params["Conv_0"]["kernel"], v0["params"]["Conv_0"]["kernel"])

  # The export may overwrite the init file (the bundled checkpoint); the lineage
  # is read from the copy the run kept.
  models.save_checkpoint(v0, first, {"command": "something else"}, dtype=np.float32)
  stages = train.lineage(config, {"command": "stage two", "epochs": 1, "training_seconds": 5.0},
                         tmp_path / "a")
  assert [s["command"] for s in stages] == ["python -m experiments.train --stage=one", "stage two"]
  assert stages[0]["epochs"] == 2 and stages[0]["training_seconds"] == 100.0
  assert stages[1]["init_from_sha256"] == digest
  # A later stage's metadata carries the whole lineage forward.
  models.save_checkpoint(v0, tmp_path / "second.msgpack", {"lineage": stages}, dtype=np.float32)
  third = train.lineage(_config(init_from=str(tmp_path / "second.msgpack")), {"command": "three"})
  assert [s["command"] for s in third] == [s["command"] for s in stages] + ["three"]


def test_init_from_without_metadata_is_refused(tmp_path):
  models.save_checkpoint(models.init_variables(models.create("allconv"), jax.random.PRNGKey(0)),
                         tmp_path / "w.msgpack")
  (tmp_path / "w.json").unlink()
  with pytest.raises(ValueError, match="has no metadata"):
    train.lineage(_config(init_from=str(tmp_path / "w.msgpack")), {"command": "x"})


def test_recomputed_batch_stats_are_the_mean_of_the_batches_statistics():
  """Each batch norm gets the mean over whole batches of the mean and variance
  its input has in training mode (read here from the captured conv output)."""
  module = Tiny()
  v = models.init_variables(module, jax.random.PRNGKey(0))
  x, _ = _data(14)  # 3 batches of 4; the last 2 images are left out
  out = train.recompute_batch_stats(module, v, x, 4, jax.random.PRNGKey(1))
  _equal_trees(out["params"], v["params"])
  means, vars_ = [], []
  for i in range(3):
    _, st = module.apply(v, x[4 * i:4 * i + 4], train=True, rngs={"dropout": jax.random.key(0)},
                         mutable=["batch_stats", "intermediates"],
                         capture_intermediates=lambda m, _: isinstance(m, nn.Conv))
    conv = np.asarray(st["intermediates"]["ConvBN_0"]["Conv_0"]["__call__"][0], np.float64)
    means.append(conv.mean(axis=(0, 1, 2)))
    vars_.append(conv.var(axis=(0, 1, 2)))
  bn = out["batch_stats"]["ConvBN_0"]["BatchNorm_0"]
  np.testing.assert_allclose(bn["mean"], np.mean(means, 0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(bn["var"], np.mean(vars_, 0), rtol=1e-4, atol=1e-6)
  # With pad, the batches are augmented as in training (deterministically given the key).
  aug = train.recompute_batch_stats(module, v, x, 4, jax.random.PRNGKey(1), pad=2)
  again = train.recompute_batch_stats(module, v, x, 4, jax.random.PRNGKey(1), pad=2)
  _equal_trees(aug, again)
  assert not np.allclose(aug["batch_stats"]["ConvBN_0"]["BatchNorm_0"]["mean"], bn["mean"])
  with pytest.raises(ValueError, match="at least one batch of 4 images, got 3"):
    train.recompute_batch_stats(module, v, x[:3], 4, jax.random.PRNGKey(1))


def test_average_weights_is_the_leafwise_mean():
  a = {"w": np.array([1.0, 2.0]), "b": {"c": np.array(3.0)}}
  b = {"w": np.array([3.0, 6.0]), "b": {"c": np.array(-1.0)}}
  m = train.average_weights([a, b])
  np.testing.assert_array_equal(m["w"], [2.0, 4.0])
  assert float(m["b"]["c"]) == 1.0
  with pytest.raises(ValueError, match="at least one"):
    train.average_weights([])


def test_average_epochs_exports_the_mean_of_the_last_epochs(tmp_path, monkeypatch):
  """average_epochs=2 keeps the weights after the last 2 epochs and exports
  their mean with recomputed batch statistics; the metadata says so."""
  monkeypatch.setenv("ONEPIXEL_CACHE", str(tmp_path / "cache"))
  config = _config(data=_image_tree(tmp_path / "tree"), num_epochs=3, average_epochs=2,
                   export_path=str(tmp_path / "w" / "allconv.msgpack"), fp16_tolerance=1.0)
  with pytest.raises(ValueError, match="average_epochs=4 must be between 0 and num_epochs=3"):
    train.averaged_epochs(_config(num_epochs=3, average_epochs=4))
  tr, val = train.load_data(config)  # 4 training images: one step per epoch
  state, _ = train.train(config, tmp_path / "wd", tr, val)
  saved = sorted(p.name for p in (tmp_path / "wd" / train.EPOCH_WEIGHTS).glob("*.msgpack"))
  assert saved == ["epoch_002.msgpack", "epoch_003.msgpack"]
  last = models.load("allconv", train.epoch_weights_path(tmp_path / "wd", 3)).variables
  _equal_trees(last["params"], state.params)  # the weights after epoch 3 are the final ones

  module = models.create("allconv")
  mean, epochs = train.averaged_variables(config, tmp_path / "wd", module, tr[0])
  assert epochs == [2, 3]
  second = models.load("allconv", train.epoch_weights_path(tmp_path / "wd", 2)).variables
  jax.tree_util.tree_map(lambda m, a, b: np.testing.assert_allclose(m, (a + b) / 2, rtol=1e-6),
                         mean["params"], second["params"], last["params"])
  meta = train.export(config, tmp_path / "wd", command="python -m experiments.train --export")
  assert meta["averaged_epochs"] == [2, 3] and meta["lineage"][-1]["averaged_epochs"] == [2, 3]
  stored = models.load("allconv", config.export_path).variables
  jax.tree_util.tree_map(lambda s, m: np.testing.assert_allclose(s, m, rtol=1e-3, atol=1e-3),
                         stored, mean)

  train.epoch_weights_path(tmp_path / "wd", 2).unlink()
  with pytest.raises(ValueError, match=r"epochs \[2\] are missing"):
    train.export(config, tmp_path / "wd")
