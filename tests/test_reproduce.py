"""experiments.reproduce_paper: the report's computed cells on known records, and
the runs end to end on a random-weights AllConv (NiN and VGG16 'missing')."""

import json
import os

import numpy as np
import pytest

from onepixel_jax import data, figures, models, perturb, results
from onepixel_jax.paper import reproduce


def rec(id, label, target, success, prob=0.5, queries=400, distortion=100.0):
  return dict(id=id, label=label, target=target, success=success, adversarial_prob=prob, queries=queries,
              distortion=distortion, predicted=target if success else label)


# AllConv, Table IV: image 0 (cat=3) reaches dog (p 0.8) and frog (p 0.6); image 1 (ship=8) nothing.
IV = ([rec(0, 3, t, t in (5, 6), prob={5: 0.8, 6: 0.6}.get(t, 0.1), queries=800 if t in (5, 6) else 1100,
           distortion=120.0 if t in (5, 6) else 10.0) for t in range(10) if t != 3]
      + [rec(1, 8, t, False, queries=1100) for t in range(10) if t != 8])


def test_report_cells_are_the_known_answers():
  cfg = reproduce.preset("cpu")
  md = reproduce.report(["4", "6"], cfg, {"iv_allconv": IV}, {"iv_nin": "no checkpoint"})
  # 2 successes of 18 targeted attacks; 1 of 2 images fooled; mean confidence (0.8 + 0.6) / 2.
  assert "| targeted success | 11.11% (19.82%) | - (23.15%) | - (16.48%) |" in md
  assert "| non-targeted success | 50.00% (68.71%) |" in md
  assert "| confidence | 70.00% (79.40%) |" in md
  # Mean queries (2 * 800 + 16 * 1100) / 18; mean distortion of the successes 120.
  assert f"| mean evaluations per attack | {(2 * 800 + 16 * 1100) / 18:,.0f} (16,000) |" in md
  assert "| mean distortion, one channel (successes) | 120 (123) |" in md
  assert "- nin: not run — *no checkpoint*" in md


def test_figure_data_comes_from_the_records_and_the_run_definitions():
  old = [{k: v for k, v in r.items()} for r in IV]  # older records carry no model or pixels
  figs = reproduce.figure_data(["4", "5"], {"iv_allconv": old, "v_nin_5px": old})
  kind, fig5 = figs["fig5_targets"]
  assert kind == "targets_histogram"
  # One image reached 2 targets, one none; the paper's share at 0 is looked up by (model, pixels).
  assert fig5["runs"]["iv_allconv"] == {"counts": [1, 0, 1] + [0] * 7, "paper_zero": 0.31}
  assert fig5["runs"]["v_nin_5px"]["paper_zero"] == 0.14
  kind, fig6 = figs["fig6_pairs_iv_allconv"]
  counts = np.asarray(fig6["counts"])
  assert kind == "pair_heatmap" and counts.sum() == 2 and counts[3, 5] == counts[3, 6] == 1


@pytest.fixture
def only_allconv(setup, monkeypatch):
  real = models.load

  def load(name, checkpoint=None):
    if name != "allconv":
      raise ValueError(f"no bundled checkpoint for {name!r}")
    return real(name, setup["ckpt"])

  monkeypatch.setattr(models, "load", load)


def tiny(setup):
  cfg = reproduce.preset("cpu")
  cfg.num_images, cfg.popsize, cfg.generations, cfg.random_trials, cfg.data = 2, 8, 2, 20, setup["data"]
  return cfg


def test_tables_and_figures(setup, only_allconv, tmp_path):
  out = str(tmp_path)
  md = reproduce.reproduce(["4", "6", "7", "8"], tiny(setup), out, progress=False, log=lambda *a: None)
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
  # Figures are regenerated from their data alone (the one redraw entry point's function).
  os.remove(os.path.join(out, "figures", "fig5_targets.png"))
  redrawn = figures.redraw(os.path.join(out, "figures"))
  assert len(redrawn) == 4 and os.path.exists(os.path.join(out, "figures", "fig5_targets.png"))


def test_random_baseline_records_are_true(setup, only_allconv, tmp_path):
  cfg = tiny(setup)
  reproduce.execute(reproduce.Run("vii_allconv", "allconv", random=True), cfg, str(tmp_path), progress=False)
  recs = results.read(os.path.join(tmp_path, "vii_allconv", "results.jsonl"))
  assert len(recs) == 2 and {r["model"] for r in recs} == {"allconv"}
  model = models.load("allconv")
  images, _ = data.load(setup["data"], "test", model)
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
