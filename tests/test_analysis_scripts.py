"""The analysis scripts: flags in, files out; bad flags exit with one line before anything is written."""

import json

import pytest

from tests.helpers import run_module


@pytest.mark.parametrize("script", ["probe", "vulnerability", "open_questions", "search_curves", "verify",
                                    "pixel_subsets"])
def test_bad_model_is_one_line(script, tmp_path):
  out = tmp_path / "out"
  proc = run_module(f"analysis.{script}", "--model=resnet", f"--out={out}", timeout=120)
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"analysis.{script}: error:") and "unknown model 'resnet'" in last, proc.stderr[-1500:]
  assert not out.exists()


def test_redraw_needs_files():
  proc = run_module("analysis.redraw", timeout=60)
  assert proc.returncode != 0 and "give one or more figure .json files" in proc.stderr


def test_probe_on_an_image_no_attack_fooled(tmp_path):
  """A failed attack is probed towards its best candidate, and the output says so."""
  out = tmp_path / "probe"
  # Four random pixels, no generation: the bundled AllConv keeps the label of the drawn image.
  proc = run_module("analysis.probe", "--num_images=1", "--popsize=4", "--generations=0", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  (attack,) = [json.loads(line) for line in (out / "attacks.jsonl").read_text().splitlines()]
  assert not attack["success"] and attack["queries"] == 4
  summary = json.loads((out / "probe_summary.json").read_text())
  (probe,) = summary["probes"]
  assert probe["probed"] == "best candidate" and probe["perturbation"] == attack["perturbation"]
  assert summary["summary"]["successful"] == 0 and summary["summary"]["best_candidates"] == 1
  # The true class still leads at the best candidate (t = 1): by how much is the finding.
  assert 0 < probe["margin"] <= 1 and probe["adv_label"] == attack["label"]
  assert "1 best candidates of images no attack fooled" in proc.stdout
  for name in ("probe_curves", "probe_positions", "probe_pairs"):
    assert (out / f"{name}.png").stat().st_size > 1000 and json.loads((out / f"{name}.json").read_text())
  curves = json.loads((out / "probe_curves.json").read_text())
  assert [e["success"] for e in curves["examples"]] == [False] and "best candidate" in curves["examples"][0]["title"]


def test_search_curves_end_to_end_and_resume(tmp_path):
  out = tmp_path / "curves"
  args = ("--num_images=1", "--max_queries=40", "--step=8", "--methods=corner,prioritized_corners,sparse_rs",
          f"--out={out}")
  proc = run_module("analysis.search_curves", *args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  table = json.loads((out / "search_table.json").read_text())
  rows = {(r["method"], r["budget"]): r for r in table["table"]}
  assert set(rows) == {(m, 40) for m in ("corner", "prioritized_corners", "sparse_rs")}
  rows_methods = ("corner", "prioritized_corners", "sparse_rs")
  for m in rows_methods:
    (rec,) = [json.loads(line) for line in (out / f"{m}.jsonl").read_text().splitlines()]
    assert rec["method"] == m and rec["queries"] <= 40
    assert "fitness_history" not in rec and "predicted_history" not in rec and "index" not in rec
    assert rec["success"] == (0 < rec["first_success_query"] <= 40)
  curves = json.loads((out / "search_curves.json").read_text())
  assert curves["budgets"][0] == 1 and curves["budgets"][-1] == 40
  assert (out / "search_curves.png").stat().st_size > 1000
  # Rerunning resumes: nothing left to run; a grid reference of the image adds the recall table.
  ref = tmp_path / "verify.jsonl"
  ref.write_text(json.dumps({"index": rec["id"], "target": None, "grid_vulnerable": True}) + "\n")
  again = run_module("analysis.search_curves", *args, f"--reference={ref}")
  assert again.returncode == 0 and again.stdout.count("1 of 1 images already") == 3, again.stdout[-2000:]
  recall = json.loads((out / "search_table.json").read_text())["recall"]
  wins = {m: json.loads((out / f"{m}.jsonl").read_text())["success"] for m in rows_methods}
  assert {r["method"]: (r["found"], r["vulnerable"]) for r in recall} == {m: (int(w), 1) for m, w in wins.items()}
  assert "Recall against the grid reference (1 of 1 images grid-vulnerable)" in again.stdout
  # Other settings into the same folder: one line, nothing lost.
  other = run_module("analysis.search_curves", *args[:1], "--max_queries=32", *args[2:])
  assert other.returncode != 0 and "other settings (max_queries differ)" in other.stderr.strip().splitlines()[-1]
  assert len((out / "corner.jsonl").read_text().splitlines()) == 1
  # The same settings with other weights (as after a better checkpoint is bundled): refused too.
  settings = json.loads((out / "config.json").read_text())
  assert len(settings["weights_sha256"]) == 64
  (out / "config.json").write_text(json.dumps({**settings, "weights_sha256": "0" * 64}))
  other = run_module("analysis.search_curves", *args)
  assert other.returncode != 0 and "other settings (weights_sha256 differ)" in other.stderr.strip().splitlines()[-1]
  assert len((out / "corner.jsonl").read_text().splitlines()) == 1


def test_search_curves_rejects_unknown_method(tmp_path):
  proc = run_module("analysis.search_curves", "--methods=de,cma", f"--out={tmp_path / 'x'}", timeout=120)
  assert proc.returncode != 0
  assert "unknown method 'cma'" in proc.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "x").exists()


def test_pixel_subsets_of_a_results_file(tmp_path):
  """Successes with 2+ pixels from --results, each subset's verdict equal to
  the model's prediction on that subset's image; one-line errors otherwise."""
  import numpy as np

  import onepixel_jax as op
  from onepixel_jax import perturb
  from onepixel_jax.analysis import pixel_subsets

  # Sample 7 (a frog) becomes a bird with the middle pixel alone (the demo's find).
  pert = [[3, 3, 0, 0, 0], [14, 16, 255, 232, 228], [28, 5, 250, 10, 10]]
  recs = [{"id": 7, "label": 6, "target": None, "success": True, "perturbation": pert},
          {"id": 3, "label": 0, "target": None, "success": False, "perturbation": pert},
          {"id": 5, "label": 8, "target": None, "success": True, "perturbation": pert[1:2]}]
  path = tmp_path / "results.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in recs))
  out = tmp_path / "subsets"
  proc = run_module("analysis.pixel_subsets", f"--results={path}", "--num_images=2", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  got = json.loads((out / "pixel_subsets_summary.json").read_text())
  (row,) = got["records"]
  # The metadata names the records' images, not the draw's (2 drawn here).
  assert got["ids"] == [7, 3, 5] and got["num_images"] == 3 and got["num_records"] == 3
  model = op.models.load("allconv")
  images, _ = op.data.load_cifar10("samples")
  masks = pixel_subsets.subsets(3)
  subs = pixel_subsets.subset_perturbations(np.array(pert), masks)
  predicted = np.asarray(model.predict(perturb.apply(np.repeat(images[7:8], len(masks), 0), subs))).argmax(1)
  wins = predicted != 6
  first = int(np.argmax(wins))
  assert row == {"id": 7, "label": 6, "target": None, "minimal_size": int(masks[first].sum()),
                 "minimal_pixels": np.flatnonzero(masks[first]).tolist(), "full_set_succeeds": bool(wins[-1]),
                 "succeeding_subsets": int(wins.sum())}
  assert wins[-1] and row["minimal_size"] == 1  # the record reproduces; the frog pixel alone suffices
  assert (out / "pixel_subsets.png").stat().st_size > 1000
  assert "1 successful 3-pixel attacks, 1 reproduced: 1 need 1, 0 need 2, 0 need 3" in proc.stdout
  # Nothing to analyse: empty outputs, and the output says why.
  path.write_text(json.dumps(recs[2]) + "\n")
  none = run_module("analysis.pixel_subsets", f"--results={path}", "--num_images=2", f"--out={tmp_path / 'x'}")
  assert none.returncode == 0 and "no successful attack with 2 or more pixels" in none.stdout, none.stderr[-2000:]
  empty = json.loads((tmp_path / "x" / "pixel_subsets_summary.json").read_text())
  assert empty["records"] == [] and empty["summary"]["records"] == 0 and (tmp_path / "x" / "pixel_subsets.png").exists()
  # A 1-pixel attack asked for: one line, nothing written.
  one = run_module("analysis.pixel_subsets", "--pixels=1", f"--out={tmp_path / 'y'}")
  assert one.returncode != 0 and "--pixels must be at least 2" in one.stderr.splitlines()[-1]
  assert not (tmp_path / "y").exists()
