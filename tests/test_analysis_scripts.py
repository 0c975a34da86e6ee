"""The analysis scripts: bad flags exit with one line before anything is written."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("script", ["probe", "vulnerability", "open_questions"])
def test_bad_model_is_one_line(script, tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run([sys.executable, "-m", f"analysis.{script}", "--model=resnet", f"--out={out}"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"analysis.{script}: error:") and "unknown model 'resnet'" in last, proc.stderr[-1500:]
  assert not out.exists()


def test_redraw_needs_files():
  proc = subprocess.run([sys.executable, "-m", "analysis.redraw"], cwd=ROOT, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode != 0 and "give one or more figure .json files" in proc.stderr
