"""Per-image one-pixel verdicts: the summary's arithmetic, and the entry point
end to end on the bundled ConvSmall (records, resume, refusal, soundness of
its certified positions)."""

import json

import numpy as np

from onepixel_jax import data, models, perturb
from onepixel_jax.analysis import certify, verify
from tests.helpers import run_module


def _rec(index, verdict, grid, target=None, seconds=1.0):
  counts = {"robust": (1024, 0, 0), "vulnerable": (1000, 24, 0), "unknown": (1000, 0, 24)}[verdict]
  return {"index": index, "label": 0, "target": target, "verdict": verdict, "grid_vulnerable": grid,
          "certified": counts[0], "vulnerable": counts[1], "unknown": counts[2], "seconds": seconds,
          "map": "1" * 1024}


def test_summary_scores_an_attack_against_the_verdicts():
  recs = [_rec(1, "vulnerable", True, seconds=1), _rec(2, "vulnerable", False, seconds=3),
          _rec(3, "robust", False, seconds=2), _rec(4, "unknown", False, seconds=10), _rec(5, "vulnerable", True)]
  attacks = [{"id": 1, "target": None, "success": True}, {"id": 2, "target": None, "success": True},
             {"id": 3, "target": None, "success": False}, {"id": 4, "target": None, "success": True},
             {"id": 5, "target": None, "success": False}, {"id": 5, "target": 3, "success": True}]
  s = verify.summary(recs, attacks)
  assert (s["robust"], s["vulnerable"], s["unknown"], s["definite_share"]) == (1, 3, 1, 0.8)
  assert s["positions"] == {"certified": 5024, "vulnerable": 72, "unknown": 24}
  assert s["seconds_median"] == 2.0 and s["seconds_max"] == 10.0
  assert s["grid_recall_known"] == 2 / 3  # the grid found 2 of the 3 images known vulnerable
  assert s["attacks_matched"] == 5  # the targeted attack on image 5 matches no record
  assert s["de_recall_grid"] == 0.5 and s["de_recall_known"] == 2 / 3
  assert s["de_fooled"] == 3 and s["de_fooled_certified"] == 0 and s["de_fooled_grid_missed"] == 2
  assert verify.status_map(recs[0]).shape == (32, 32) and (verify.status_map(recs[0]) == certify.ROBUST).all()


def test_entry_point_records_resumes_and_refuses_other_settings(tmp_path):
  out = tmp_path / "v"
  args = ["--model=convsmall", "--data=samples", "--num_images=1", "--max_boxes=3000", f"--out={out}"]
  proc = run_module("analysis.verify", *args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  (rec,) = [json.loads(line) for line in (out / "verify.jsonl").read_text().splitlines()]
  # The first correctly classified sample of seed 0's order, as data.draw_correct gives it.
  model = models.load("convsmall")
  images, labels = data.load("samples", "test", model)
  ids, probs = data.draw_correct(model, images, labels, 1, 0)
  assert rec["index"] == int(ids[probs.argmax(1) == labels[ids]][0]) and rec["label"] == int(labels[rec["index"]])
  status = verify.status_map(rec)
  assert [rec["certified"], rec["vulnerable"], rec["unknown"]] == [int((status == k).sum()) for k in (1, 2, 0)]
  assert sum([rec["certified"], rec["vulnerable"], rec["unknown"]]) == 1024 and rec["boxes"] <= 3000
  # This image has pixels the grid finds, and 3,000 boxes do not decide every position.
  assert rec["grid_vulnerable"] and rec["verdict"] == "vulnerable" and rec["unknown"] > 0 and rec["exhausted"]
  x, y, *colour = rec["pixel"]
  assert status[y, x] == certify.VULNERABLE
  image, label = images[rec["index"]], rec["label"]
  # Soundness on the bundled network: random colours at certified positions keep the label,
  # the corners included; the reported pixel changes it.
  rng = np.random.default_rng(0)
  ys, xs = np.nonzero(status == certify.ROBUST)
  k = rng.integers(0, len(ys), 2048)
  pert = np.stack([xs[k], ys[k], *rng.integers(0, 256, (3, len(k)))], 1)
  pert[:8, 2:] = np.array(np.meshgrid(*[[0, 255]] * 3, indexing="ij")).reshape(3, -1).T
  pert = np.concatenate([pert, [rec["pixel"]]])
  adv = np.asarray(perturb.apply(np.repeat(image[None], len(pert), 0), pert[:, None]))
  pred = np.asarray(model.predict(adv)).argmax(1)
  assert (pred[:-1] == label).all() and pred[-1] != label
  summary = json.loads((out / "verify_summary.json").read_text())
  assert summary["summary"]["vulnerable"] == 1 and summary["weights_sha256"]
  assert (out / "verify_maps.png").stat().st_size > 1000
  # Rerunning resumes: nothing new is computed.
  before = (out / "verify.jsonl").read_text()
  proc = run_module("analysis.verify", *args)
  assert proc.returncode == 0 and "(1 done before)" in proc.stdout, proc.stderr[-2000:]
  assert (out / "verify.jsonl").read_text() == before
  # Other settings: one line, nothing lost.
  proc = run_module("analysis.verify", *args[:-2], "--max_boxes=10", f"--out={out}")
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("analysis.verify: error:") and "max_boxes differ" in last, proc.stderr[-1500:]
  assert (out / "verify.jsonl").read_text() == before


def test_networks_with_max_pooling_get_the_grid_reference_alone():
  # NiN and VGG16 have max pooling, which the certifier cannot relax; verify.record(net=None) then
  # decides exactly what a skipped certifier (max_boxes=0) decides: the grid's positions, the rest unknown.
  assert "max pooling" in certify.certifiable(models.load("nin"))
  model = models.load("convsmall")
  assert certify.certifiable(model) is None
  images, labels = data.load("samples", "test", model)
  ids, probs = data.draw_correct(model, images, labels, 1, 0)
  i = int(ids[probs.argmax(1) == labels[ids]][0])
  alone = verify.record(model, None, images[i], int(labels[i]), i)
  skipped = verify.record(model, certify.from_model(model), images[i], int(labels[i]), i, max_boxes=0)
  assert alone["map"] == skipped["map"] and alone["verdict"] == skipped["verdict"] == "vulnerable"
  assert alone["boxes"] == 0 and alone["certified"] == 0 and alone["exhausted"]
  assert alone["vulnerable"] > 0 and alone["vulnerable"] + alone["unknown"] == 1024
  assert alone["certifier"] == "skipped: no relaxation for the network's max pooling"
