"""The analysis scripts: flags in, files out; bad flags exit with one line before anything is written."""

import json

import pytest

from tests.helpers import run_module


@pytest.mark.parametrize("script", ["probe", "vulnerability", "open_questions", "search_curves", "verify"])
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
