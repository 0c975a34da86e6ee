"""experiments.reproduce_paper: the report's computed cells on known records, and
the runs end to end on a random-weights AllConv (NiN and VGG16 'missing')."""

import json
import os

import numpy as np
import pytest

from onepixel_jax import data, figures, models, perturb, results
from onepixel_jax.attack import AttackConfig
from onepixel_jax.paper import metrics, reproduce


def rec(id, label, target, success, prob=0.5, queries=400, distortion=100.0):
  return dict(id=id, label=label, target=target, success=success, adversarial_prob=prob, queries=queries,
              distortion=distortion, predicted=target if success else label)


# AllConv, Table IV: image 0 (cat=3) reaches dog (p 0.8) and frog (p 0.6); image 1 (ship=8) nothing.
IV = ([rec(0, 3, t, t in (5, 6), prob={5: 0.8, 6: 0.6}.get(t, 0.1), queries=800 if t in (5, 6) else 1100,
           distortion=120.0 if t in (5, 6) else 10.0) for t in range(10) if t != 3]
      + [rec(1, 8, t, False, queries=1100) for t in range(10) if t != 8])


def _interval(lo, hi, fmt="{:.2f}%", scale=100):
  return f"{fmt.format(scale * lo)} - {fmt.format(scale * hi)}"


def test_report_rows_are_the_known_answers():
  cfg = reproduce.preset("cpu")
  md = reproduce.report(["4", "6"], cfg, {"iv_allconv": IV}, {"iv_nin": "no checkpoint"})
  # 2 successes of 18 targeted attacks; 1 of 2 images fooled; mean confidence (0.8 + 0.6) / 2.
  w = _interval(*metrics.wilson_interval(2, 18))
  assert f"| allconv | targeted success | 11.11% | {w} | 18 attacks | 19.82% | yes |" in md
  w = _interval(*metrics.wilson_interval(1, 2))
  assert f"| allconv | non-targeted success | 50.00% | {w} | 2 images | 68.71% | yes |" in md
  # Normal interval of the mean of (0.8, 0.6): 0.7 +- 1.96 * 0.1414 / sqrt(2) = 0.7 +- 0.196.
  assert "| allconv | confidence | 70.00% | 50.40% - 89.60% | 2 successes | 79.40% | yes |" in md
  # Mean queries (2 * 800 + 16 * 1100) / 18; the paper's 16,000 lies far outside.
  assert f"| allconv | mean evaluations per attack | {(2 * 800 + 16 * 1100) / 18:,.0f} |" in md
  assert "| 18 attacks | 16,000 | **no** |" in md
  assert "| nin | not run: no checkpoint |" in md
  assert "| vgg16 | targeted success | - | - | 0 | 16.48% | - |" in md


def test_report_names_each_networks_accuracy_beside_the_papers():
  cfg = reproduce.preset("cpu-paper")
  md = reproduce.report(["4"], cfg, {"iv_allconv": IV}, {},
                        accuracies={"allconv": (0.8575, 0.856), "nin": (0.8566, 0.872)})
  line = next(l for l in md.splitlines() if l.startswith("Networks attacked"))
  assert "allconv 85.75% (paper 85.6%)," in line and "nin 85.66% (paper 87.2%: below the paper's)." in line
  assert "vgg16" not in line
  assert not any(l.startswith("Networks attacked") for l in reproduce.report(["4"], cfg, {"iv_allconv": IV}, {})
                 .splitlines())
  # Ours come from the bundled checkpoints' metadata, the paper's from PAPER,
  # which every checkpoint's metadata repeats.
  meta = models.metadata("nin")
  assert reproduce.network_accuracies(["nin", "no_such_net"]) == {"nin": (meta["test_accuracy"], 0.872)}
  for name in reproduce.CIFAR_MODELS:
    assert models.metadata(name)["paper_test_accuracy"] == reproduce.PAPER["accuracy"][name]
  assert meta["sha256"] == models.sha256_file(models.WEIGHTS_DIR / "nin.msgpack")


def test_report_profiles_the_targeted_runs():
  cfg = reproduce.preset("cpu")  # 1,100 evaluations per attack: IV's 800-evaluation successes stopped early
  pixel = {5: [[1, 2, 255, 0, 255]], 6: [[3, 4, 10, 0, 255]]}
  recs = [dict(r, target_prob={5: 0.95, 6: 0.6}.get(r["target"], 0.1) if r["id"] == 0 else 0.2,
               perturbation=pixel.get(r["target"], [[0, 0, 0, 0, 0]]) if r["id"] == 0 else [[0, 0, 0, 0, 0]])
          for r in IV]
  md = reproduce.report(["4"], cfg, {"iv_allconv": recs}, {})
  # 1 of 2 images fooled, 2 successes: 1.00 per image (paper 0.1982 x 9 = 1.78), 2.00 per fooled image
  # (1.78 / 0.6871 = 2.60); 2 of 18 stopped early; both start from cat, one ends at dog and one at frog.
  assert ("| allconv, 1 px (IV) | 1 of 2 | 1.00 (1.78) | 2.00 (2.60) | 2 of 18 | 95.00% | cat 2 "
          "| dog 1, frog 1 | 1 of 2 | - / - |") in md
  # With the clean true-class probabilities: the fooled image 0's, then the unfooled image 1's.
  md = reproduce.report(["4"], cfg, {"iv_allconv": recs}, {}, clean={"iv_allconv": {0: 0.5312, 1: 0.9104}})
  assert "| dog 1, frog 1 | 1 of 2 | 53.12% / 91.04% |" in md
  # A run made with other weights is marked here as in its table.
  marked = reproduce.report(["4"], cfg, {"iv_allconv": recs}, {}, earlier={"iv_allconv": ("0" * 64, "1" * 64)})
  assert "| allconv, 1 px (IV) (earlier weights) | 1 of 2 |" in marked
  # Without records of a targeted run, no profile section.
  assert "Under the targeted cells" not in reproduce.report(["7"], cfg, {}, {})


def test_table_viii_says_how_sure_each_network_was():
  cfg = reproduce.preset("cpu")
  viii = [rec(i, 3, None, i == 0) for i in range(3)]  # image 0 fooled, 1 and 2 not
  md = reproduce.report(["8"], cfg, {"viii_nin": viii}, {}, clean={"viii_nin": {0: 0.4, 1: 0.9, 2: 0.7}})
  assert "| nin | 70.00% (66.67%) | 40.00% | 80.00% |" in md
  # Without the clean probabilities (no data or network at hand), no such table.
  assert "median, not fooled" not in reproduce.report(["8"], cfg, {"viii_nin": viii}, {})


def test_incomplete_runs_carry_their_count():
  cfg = reproduce.preset("cpu-paper")  # 30 images per targeted run: 270 attacks
  md = reproduce.report(["4"], cfg, {"iv_allconv": IV}, {})
  assert "| 18 attacks of 270 (incomplete) |" in md and "| 2 images of 30 (incomplete) |" in md


def test_wilson_interval_known_answers():
  # 3 of 9: 12-65% (the example); 0 of 10: the upper end is 1 - 0.05^(1/n)-like, 27.75%.
  np.testing.assert_allclose(metrics.wilson_interval(3, 9), (0.1206, 0.6458), atol=5e-5)
  np.testing.assert_allclose(metrics.wilson_interval(0, 10), (0.0, 0.2775), atol=5e-5)
  lo, hi = metrics.wilson_interval(7, 20)
  lo2, hi2 = metrics.wilson_interval(13, 20)
  assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)  # symmetric in success / failure
  assert all(np.isnan(metrics.wilson_interval(0, 0)))


def test_cpu_paper_preset_is_the_papers_de_on_fewer_images():
  cfg, paper = reproduce.preset("cpu-paper"), AttackConfig()
  assert (cfg.popsize, cfg.generations) == (paper.popsize, paper.generations)
  runs = {r.name: r for r in reproduce.runs_for(reproduce.TABLES)}
  assert reproduce.planned_images(runs["iv_allconv"], cfg) == 30
  assert reproduce.planned_images(runs["viii_nin"], cfg) == 100
  assert reproduce.planned_images(runs["vii_vgg16"], cfg) == 100
  assert reproduce.planned_images(runs["iv_allconv"], reproduce.preset("cpu")) is None


def test_estimate_hours_counts_attacks_and_budget():
  cfg = reproduce.preset("cpu-paper")
  est = reproduce.estimate_hours(["4", "8"], cfg, {"allconv": 1000.0})
  assert set(est) == {"iv_allconv", "viii_allconv", "total"}  # no rate, no estimate
  assert est["iv_allconv"]["attacks"] == 270 and est["viii_allconv"]["attacks"] == 100
  assert est["viii_allconv"]["max_hours"] == round(100 * 40_400 / 1000 / 3600, 2)
  assert est["iv_allconv"]["expected_hours"] == round(270 * 16_000 / 1000 / 3600, 2)
  assert est["total"]["attacks"] == 370


def test_estimate_hours_counts_what_is_left_at_the_cost_of_the_finished_attacks():
  cfg = reproduce.preset("cpu-paper")
  done = {"iv_allconv": [{"queries": 40_400}] * 60 + [{"queries": 400}] * 10,
          "viii_allconv": [{"queries": 40_400}] * 100}  # complete
  est = reproduce.estimate_hours(["4", "8"], cfg, {"allconv": 1000.0}, done)
  mean = (60 * 40_400 + 10 * 400) / 70
  assert est["iv_allconv"]["attacks"] == 270 and est["iv_allconv"]["remaining"] == 200
  assert est["iv_allconv"]["expected_hours"] == round(200 * mean / 1000 / 3600, 2)
  assert est["iv_allconv"]["max_hours"] == round(200 * 40_400 / 1000 / 3600, 2)
  assert est["viii_allconv"]["remaining"] == 0 and est["viii_allconv"]["max_hours"] == 0
  assert est["total"]["remaining"] == 200 and est["total"]["attacks"] == 370
  # A run not begun: at the cost of the same network's finished targeted attacks (Table IV's for Table V).
  est = reproduce.estimate_hours(["5"], cfg, {"allconv": 1000.0}, done)
  assert est["v_allconv_3px"]["expected_hours"] == round(270 * mean / 1000 / 3600, 2)
  # A network with no finished targeted attack: at the cost of the other networks' ones,
  # not at the paper's Table VI mean (its own non-targeted attacks do not count).
  done["viii_vgg16"] = [{"queries": 800}] * 100
  est = reproduce.estimate_hours(["4"], cfg, {"allconv": 1000.0, "vgg16": 500.0}, done)
  assert est["iv_vgg16"]["expected_hours"] == round(270 * mean / 500 / 3600, 2)
  # Nothing finished anywhere with that targeting: the paper's mean.
  est = reproduce.estimate_hours(["4"], cfg, {"vgg16": 500.0}, {"viii_vgg16": done["viii_vgg16"]})
  assert est["iv_vgg16"]["expected_hours"] == round(270 * reproduce.PAPER["vi"]["vgg16"][0] / 500 / 3600, 2)


def test_estimate_hours_uses_the_rate_of_each_runs_pixel_count():
  cfg = reproduce.preset("cpu-paper")
  est = reproduce.estimate_hours(["5"], cfg, {("nin", 5): 100.0, ("nin", 1): 1000.0, "allconv": 500.0})
  assert est["v_nin_5px"]["max_hours"] == round(270 * 40_400 / 100 / 3600, 2)
  assert est["v_allconv_3px"]["max_hours"] == round(270 * 40_400 / 500 / 3600, 2)  # a model-wide rate


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
  # Only the networks whose runs are in the report are named, with their metadata's accuracy.
  acc = models.metadata("allconv")["test_accuracy"]
  line = next(l for l in md.splitlines() if l.startswith("Networks attacked"))
  assert f"allconv {100 * acc:.2f}%" in line and "nin" not in line and "vgg16" not in line
  # Every cell of a run that ran holds our number: here the targeted success of AllConv.
  recs = results.read(os.path.join(out, "iv_allconv", "results.jsonl"))
  ours = 100 * np.mean([r["success"] for r in recs])
  assert f"| allconv | targeted success | {ours:.2f}% |" in md
  for stem in ("fig5_targets", "fig6_pairs_iv_allconv"):
    for ext in ("png", "pdf", "json"):
      assert os.path.getsize(os.path.join(out, "figures", f"{stem}.{ext}")) > 0
  with open(os.path.join(out, "figures", "fig6_pairs_iv_allconv.json")) as f:
    assert np.sum(json.load(f)["counts"]) == sum(r["success"] for r in recs)
  # Figures are regenerated from their data alone (the one redraw entry point's function).
  os.remove(os.path.join(out, "figures", "fig5_targets.png"))
  redrawn = figures.redraw(os.path.join(out, "figures"))
  assert len(redrawn) == 4 and os.path.exists(os.path.join(out, "figures", "fig5_targets.png"))
  # A later run of one table keeps the other tables' results in tables.md.
  again = reproduce.write_report(["7"], tiny(setup), out, {})
  for heading in ("## Table IV:", "## Table VI:", "## Table VII:", "## Table VIII:"):
    assert heading in again
  assert f"| allconv | targeted success | {ours:.2f}% |" in again
  assert reproduce.tables_with_results(out) == ["4", "6", "7", "8"]


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


def test_runs_of_other_weights_are_refused_and_marked(setup, only_allconv, tmp_path):
  cfg, out = tiny(setup), str(tmp_path)
  run = reproduce.Run("vii_allconv", "allconv", random=True)
  reproduce.execute(run, cfg, out, progress=False)
  md = reproduce.write_report(["7"], cfg, out, {})
  assert "| allconv | success |" in md and "earlier weights" not in md
  # The same folder as if made with other weights: resuming is refused, nothing is lost,
  # and the report marks its rows instead of passing them off as the bundled network's.
  path = os.path.join(out, "vii_allconv", "config.json")
  with open(path) as f:
    settings = json.load(f)
  bundled = settings["weights_sha256"]
  with open(path, "w") as f:
    json.dump({**settings, "weights_sha256": "0" * 64}, f)
  before = open(os.path.join(out, "vii_allconv", "results.jsonl")).read()
  with pytest.raises(ValueError, match=r"other settings \(weights_sha256 differ\)"):
    reproduce.execute(run, cfg, out, progress=False)
  assert open(os.path.join(out, "vii_allconv", "results.jsonl")).read() == before
  assert reproduce.earlier_weights(out, ["vii_allconv"]) == {"vii_allconv": ("0" * 64, bundled)}
  md = reproduce.write_report(["7"], cfg, out, {})
  assert "| allconv (earlier weights) | success |" in md
  assert f"`vii_allconv` 000000000000, now {bundled[:12]}" in md


def test_unknown_table_and_preset():
  with pytest.raises(ValueError, match="unknown table '9'"):
    reproduce.runs_for(["9"])
  with pytest.raises(ValueError, match="unknown network 'resnet'"):
    reproduce.runs_for(["8"], ["allconv", "resnet"])
  assert [r.name for r in reproduce.runs_for(["7", "8"], ["nin"])] == ["vii_nin", "viii_nin"]
  with pytest.raises(ValueError, match="unknown preset"):
    reproduce.preset("tpu")


def test_killed_preset_run_resumes_and_tables_need_no_attack(setup, only_allconv, tmp_path, monkeypatch):
  cfg = tiny(setup)
  cfg.attacked_targeted, cfg.attacked_nontargeted = 2, 2  # the cpu-paper way: count attacked images
  run = reproduce.Run("iv_allconv", "allconv")
  full, part = str(tmp_path / "full"), str(tmp_path / "part")
  reproduce.execute(run, cfg, full, progress=False, log=lambda *a: None)
  want = results.read(os.path.join(full, run.name, "results.jsonl"))
  assert len(want) == 2 * 9
  # A run killed after 5 attacks (and mid-write of the sixth) continues where it stopped.
  os.makedirs(os.path.join(part, run.name))
  lines = open(os.path.join(full, run.name, "results.jsonl")).read().splitlines(True)
  with open(os.path.join(part, run.name, "results.jsonl"), "w") as f:
    f.writelines(lines[:5] + [lines[5][:20]])
  import shutil
  shutil.copy(os.path.join(full, run.name, "config.json"), os.path.join(part, run.name, "config.json"))
  reproduce.execute(run, cfg, part, progress=False, log=lambda *a: None)
  got = results.read(os.path.join(part, run.name, "results.jsonl"))
  key = lambda r: (r["id"], r["target"])
  strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "time")}
  assert [strip(r) for r in sorted(got, key=key)] == [strip(r) for r in sorted(want, key=key)]
  # The tables are regenerated from the results files alone.
  monkeypatch.setattr(reproduce.job, "run", lambda *a, **k: pytest.fail("an attack ran"))
  md = reproduce.write_report(["4"], cfg, part, {})
  assert "| allconv | targeted success |" in md and "| 18 attacks of 18 |" not in md
  # ... and from them alone: the run's git-ignored examples.png changes nothing.
  assert os.path.exists(os.path.join(part, run.name, "examples.png"))
  os.remove(os.path.join(part, run.name, "examples.png"))
  assert reproduce.write_report(["4"], cfg, part, {}) == md
  assert "iv_allconv/examples.png" not in md
  # The clean true-class probabilities are the network's on the run's images (a forward pass, no attack).
  model = models.load("allconv")
  images, labels = data.load(setup["data"], "test", model)
  ids = sorted({r["id"] for r in got})
  probs = np.asarray(model.predict(images[ids]))
  want = {i: float(probs[k, labels[i]]) for k, i in enumerate(ids)}
  clean = reproduce.clean_true_probs(part, {"iv_allconv": got})["iv_allconv"]
  assert clean.keys() == want.keys()
  np.testing.assert_allclose([clean[i] for i in ids], [want[i] for i in ids], rtol=1e-5)
  # Records whose labels disagree with the data (another source than the run's) get none.
  assert reproduce.clean_true_probs(part, {"iv_allconv": [dict(r, label=(r["label"] + 1) % 10) for r in got]}) == {}
  prof = metrics.targeted_profile(got, cfg.popsize * (cfg.generations + 1), clean_true_prob=want)
  cell = lambda x: "-" if x != x else f"{100 * x:.2f}%"
  assert f"| {cell(prof['clean_true_prob_fooled'])} / {cell(prof['clean_true_prob_not_fooled'])} |" in md
  assert "- / - |" not in md
