"""experiments.reproduce_paper on a random-weights AllConv (NiN and VGG16 'missing')."""

import json
import os

import numpy as np
import pytest

from onepixel_jax import experiment, models, reproduce, results


@pytest.fixture
def only_allconv(setup, monkeypatch):
  real = experiment.load_model

  def load(name, checkpoint=None):
    if name != "allconv":
      raise ValueError(f"no bundled checkpoint for {name!r}")
    return real(name, setup["ckpt"])

  monkeypatch.setattr(experiment, "load_model", load)


def tiny(setup):
  cfg = reproduce.preset("cpu")
  cfg.num_images, cfg.popsize, cfg.generations, cfg.random_trials, cfg.data = 2, 8, 2, 20, setup["data"]
  return cfg


def test_tables_and_figures(setup, only_allconv, tmp_path):
  out = str(tmp_path)
  md = reproduce.reproduce(["4", "6", "7", "8"], tiny(setup), out, progress=False, log=lambda *a: None)
  assert "(19.82%)" in md and "(68.71%)" in md and "(16,000)" in md and "(49.70%)" in md and "(22.60%)" in md
  assert "no bundled checkpoint for 'nin'" in md and "no bundled checkpoint for 'vgg16'" in md
  assert open(os.path.join(out, "tables.md")).read() == md
  # Every cell of a run that ran holds our number: here the targeted success of AllConv.
  recs = results.read(os.path.join(out, "iv_allconv", "results.jsonl"))
  ours = 100 * np.mean([r["success"] for r in recs])
  assert f"| targeted success | {ours:.2f}% (19.82%)" in md
  for stem in ("fig5_targets", "fig6_pairs_iv_allconv"):
    for ext in ("png", "pdf", "json"):
      assert os.path.getsize(os.path.join(out, "figures", f"{stem}.{ext}")) > 0
  with open(os.path.join(out, "figures", "fig6_pairs_iv_allconv.json")) as f:
    assert np.sum(json.load(f)["counts"]) == sum(r["success"] for r in recs)
  # Figures are regenerated from their data alone.
  os.remove(os.path.join(out, "figures", "fig5_targets.png"))
  assert len(reproduce.replot(out)) == 2 and os.path.exists(os.path.join(out, "figures", "fig5_targets.png"))


def test_random_baseline_records_are_true(setup, only_allconv, tmp_path):
  cfg = tiny(setup)
  reproduce.execute(reproduce.Run("vii_allconv", "allconv", random=True), cfg, str(tmp_path), progress=False)
  recs = results.read(os.path.join(tmp_path, "vii_allconv", "results.jsonl"))
  assert len(recs) == 2
  model = experiment.load_model("allconv")
  images, _ = experiment.load_data(setup["data"], "test", model)
  from onepixel_jax import perturb
  for r in recs:
    adv = np.asarray(perturb.apply(images[r["id"]], np.asarray(r["perturbation"])))  # [k, 5] -> [H, W, 3]
    pred = int(np.asarray(model.predict(adv[None])).argmax())
    assert (pred != r["label"]) == r["success"] and pred == r["predicted"]
    assert 1 <= r["queries"] <= cfg.random_trials


def test_unknown_table_and_preset():
  with pytest.raises(ValueError, match="unknown table '9'"):
    reproduce.runs_for(["9"])
  with pytest.raises(ValueError, match="unknown preset"):
    reproduce.preset("tpu")
