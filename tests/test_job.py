"""The main job (experiments.attack): outputs, resume after SIGKILL, bad flags."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from onepixel_jax import job as job_lib
from onepixel_jax import models, results
from onepixel_jax.attack import AttackConfig
from onepixel_jax.paper import metrics
from tests.helpers import ROOT

TINY = AttackConfig(popsize=8, generations=3)


def job(setup, **kw):
  args = dict(model="allconv", checkpoint=setup["ckpt"], data=setup["data"], config=TINY, batch_size=2)
  args.update(kw)
  return job_lib.Job(**args)


def test_outputs_and_summary(setup, tmp_path):
  out = str(tmp_path / "run")
  s = job_lib.run(job(setup, num_images=2), out, progress=False, log=lambda *a: None)
  recs = results.read(os.path.join(out, "results.jsonl"))
  assert len(recs) == 18 and s["num_attacks"] == 18 and s["num_images"] == 2
  # Records say what produced them, so nothing downstream parses run names or re-derives them.
  assert {(r["model"], r["pixels"], r["popsize"]) for r in recs} == {("allconv", 1, TINY.popsize)}
  label = {r["id"]: r["label"] for r in recs}
  assert {(r["id"], r["target"]) for r in recs} == {(i, t) for i, y in label.items() for t in range(10) if t != y}
  with open(os.path.join(out, "summary.json")) as f:
    on_disk = json.load(f)
  for key in ("model", "pixels", "targeted", "num_images", "num_attacks", "success_rate", "confidence",
              "mean_queries", "wall_seconds"):
    assert key in on_disk
  assert on_disk["success_rate"] == pytest.approx(metrics.success_rate(recs))
  assert on_disk["mean_queries"] == pytest.approx(np.mean([r["queries"] for r in recs]))
  assert os.path.getsize(os.path.join(out, "examples.png")) > 1000
  # A rerun resumes: nothing new to do, same records.
  job_lib.run(job(setup, num_images=2), out, progress=False, log=lambda *a: None)
  assert results.read(os.path.join(out, "results.jsonl")) == recs


def test_torn_last_line_is_repaired(setup, tmp_path):
  out = str(tmp_path / "run")
  job_lib.run(job(setup, num_images=1, targeted=False), out, progress=False, log=lambda *a: None)
  path = os.path.join(out, "results.jsonl")
  full = results.read(path)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])  # killed half-way through writing the record
  assert results.read(path) == []
  job_lib.run(job(setup, num_images=1, targeted=False), out, progress=False, log=lambda *a: None)
  assert results.read(path) == full


def run_cli(args, **kw):
  return subprocess.Popen([sys.executable, "-m", "experiments.attack", *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def cli_args(setup, out):
  return ["--checkpoint", setup["ckpt"], "--data", setup["data"], "--num_images=6", "--popsize=8",
          "--generations=3", "--batch_size=1", "--out", out]


def test_sigkill_then_resume_matches_uninterrupted_run(setup, tmp_path):
  ref = tmp_path / "ref"
  job_lib.run(job(setup, num_images=6, batch_size=1), str(ref), progress=False, log=lambda *a: None)
  expected = sorted(map(json.dumps, results.read(ref / "results.jsonl")))

  out = tmp_path / "killed"
  proc = run_cli(cli_args(setup, str(out)))
  path = out / "results.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and (not path.exists() or path.read_text().count("\n") < 5):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  n_before = len(results.read(path))
  assert 5 <= n_before < len(expected), "the kill must land half-way"
  proc = run_cli(cli_args(setup, str(out)))
  stdout, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-2000:]
  assert "success rate" in stdout
  assert sorted(map(json.dumps, results.read(path))) == expected


def corrupt_checkpoint(setup, tmp_path):
  bad = tmp_path / "bad.msgpack"
  data = open(setup["ckpt"], "rb").read()
  bad.write_bytes(data[: len(data) // 2])
  bad.with_suffix(".json").write_text(open(setup["ckpt"][:-8] + ".json").read())
  return str(bad)


@pytest.mark.parametrize("flags,match", [
    (["--model=resnet"], "unknown model 'resnet'"),
    (["--pixels=0"], "pixels must be an integer >= 1"),
    (["--num_images=7"], "num_images=7 but the data has only 6 images"),
    (["--data=/nonexistent/cifar.tar.gz"], "not found"),
    (["--checkpoint=CORRUPT"], "corrupt or truncated"),
])
def test_bad_flags_exit_with_one_line_and_write_nothing(setup, tmp_path, flags, match):
  out = tmp_path / "out"
  args = cli_args(setup, str(out)) + [f.replace("CORRUPT", corrupt_checkpoint(setup, tmp_path)) for f in flags]
  proc = run_cli(args)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode != 0
  last = stderr.strip().splitlines()[-1]
  assert last.startswith("experiments.attack: error:") and match in last, stderr[-1500:]
  assert not out.exists()


def test_other_settings_refuse_to_resume(setup, tmp_path):
  out = str(tmp_path / "run")
  job_lib.run(job(setup, num_images=1, targeted=False), out, progress=False, log=lambda *a: None)
  with pytest.raises(ValueError, match="other settings"):
    job_lib.run(job(setup, num_images=1, targeted=False, config=AttackConfig(popsize=8, generations=3, pixels=3)),
                   out, progress=False, log=lambda *a: None)


def test_retrained_weights_refuse_to_resume(setup, tmp_path):
  """Records made with one network are never continued with another saved
  under the same name (a retrained bundled checkpoint)."""
  import shutil
  import jax
  ckpt = str(tmp_path / "allconv.msgpack")
  shutil.copy(setup["ckpt"], ckpt)
  shutil.copy(setup["ckpt"].replace(".msgpack", ".json"), ckpt.replace(".msgpack", ".json"))
  out, quiet = str(tmp_path / "run"), dict(progress=False, log=lambda *a: None)
  spec = job(setup, num_images=1, targeted=False, checkpoint=ckpt)
  job_lib.run(spec, out, **quiet)
  with open(os.path.join(out, "config.json")) as f:
    assert json.load(f)["weights_sha256"] == job_lib.weights_sha256(models.load("allconv", ckpt))
  job_lib.run(spec, out, **quiet)  # the same weights resume
  models.save_checkpoint(models.init_variables(models.create("allconv"), jax.random.PRNGKey(1)), ckpt)
  with pytest.raises(ValueError, match=r"other settings \(weights_sha256 differ\)"):
    job_lib.run(spec, out, **quiet)


def test_dense_run_resumes_an_incremental_one_with_the_same_records(setup, tmp_path):
  """--noincremental changes speed only: it may resume an incremental run's
  --out, and a whole dense run writes the same records."""
  quiet = dict(progress=False, log=lambda *a: None)
  inc_out, dense_out = str(tmp_path / "inc"), str(tmp_path / "dense")
  job_lib.run(job(setup, num_images=2, targeted=False), inc_out, **quiet)
  job_lib.run(job(setup, num_images=2, targeted=False, incremental=False), dense_out, **quiet)
  key = lambda r: (r["id"], r["target"])
  inc = sorted(results.read(os.path.join(inc_out, "results.jsonl")), key=key)
  dense = sorted(results.read(os.path.join(dense_out, "results.jsonl")), key=key)
  assert len(inc) == 2
  for a, b in zip(inc, dense):
    assert (a["id"], a["success"], a["predicted"], a["perturbation"], a["queries"]) == \
        (b["id"], b["success"], b["predicted"], b["perturbation"], b["queries"])
    assert a["true_prob"] == pytest.approx(b["true_prob"], abs=1e-6)
  job_lib.run(job(setup, num_images=2, targeted=False, incremental=False), inc_out, **quiet)  # no refusal
  assert sorted(results.read(os.path.join(inc_out, "results.jsonl")), key=key) == inc


@pytest.mark.parametrize("popsize,generations,reduced", [(400, 100, False), (400, 10, True), (100, 100, True)])
def test_summary_says_when_the_budget_is_below_the_papers(popsize, generations, reduced):
  s = {"model": "allconv", "pixels": 1, "targeted": False, "num_images_drawn": 2, "num_images": 2,
       "num_attacks": 2, "popsize": popsize, "generations": generations, "success_rate": 0.5,
       "confidence": 0.3, "mean_queries": 100.0, "wall_seconds": 1.0}
  text = job_lib.format_summary(s)
  assert f"population {popsize} x {generations} generations" in text
  assert ("REDUCED" in text) == reduced
