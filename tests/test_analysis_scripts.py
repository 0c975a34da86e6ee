"""The analysis scripts: flags in, files out; bad flags exit with one line before anything is written."""

import json

import pytest

from tests.helpers import run_module


@pytest.mark.parametrize("script", ["probe", "vulnerability", "open_questions", "verify"])
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
