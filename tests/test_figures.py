"""figures: every figure kind draws from its JSON alone, and redraws identically."""

import json
import subprocess
import sys

import numpy as np
import pytest

from onepixel_jax import AttackResult, figures
from onepixel_jax.analysis import corner_search, open_questions, pixel_subsets, probe, search_curves, verify
from tests import synthetic as syn
from tests.helpers import ROOT
from tests.synthetic import record


@pytest.fixture(scope="module")
def outputs():
  """Figure data of every kind, from the analyses run on the synthetic classifier."""
  images = syn.noisy_images(3)
  red = [syn.HOT[0], syn.HOT[1], 255, 0, 0]
  p = probe.probe(syn.red_pixel, images, [0, 0, 0], np.array([[red], [red], [[0, 0, 0, 0, 255]]]), steps=10)
  figs = dict(probe.outputs(p, [1, 2, 3], ("a", "b", "c")).figures)
  cs = corner_search.search(syn.red_pixel, images[:2], [0, 0])
  figs.update(corner_search.outputs(cs, images[:2], [1, 2], ("a", "b", "c"), [record(0), record(None)]).figures)
  by_size = {p: AttackResult.from_records([record(0, popsize=p), record(2, popsize=p), record(None, popsize=p)])
             for p in (8, 16)}
  imb = open_questions.imbalance(np.array([[np.nan, 1, 0], [0, np.nan, 1]]), np.array([0, 1]),
                                 np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]]))
  figs.update(open_questions.outputs(by_size, 32, ("a", "b", "c"), imb, "test", None, None).figures)
  figs["fig5"] = ("targets_histogram", {"runs": {"iv_x": {"counts": [1, 2] + [0] * 8, "paper_zero": 0.3}}})
  figs["fig6"] = ("pair_heatmap", {"title": "t", "class_names": ["a", "b"], "counts": [[0, 2], [1, 0]]})
  recs = [{"index": i, "label": 0, "target": t, "verdict": v, "certified": 60, "vulnerable": 2, "unknown": 2,
           "pixel": px, "map": m} for i, (t, v, px, m) in enumerate([
               (None, "vulnerable", red, "1" * 60 + "2201"), (2, "unknown", None, "0" * 64)])]
  figs["verify_maps"] = ("verify_maps", verify.figure_data(recs, images[:2], ("a", "b", "c"), hw=(8, 8)))
  firsts = [dict(record(None), first_success_query=q) for q in (3, -1)]
  figs.update(search_curves.outputs({"de": firsts, "corner": firsts[::-1]}, 40, {"model": "m"},
                                    {0: True}).figures)
  subsets = pixel_subsets.evaluate(syn.red_pixel, images[:2], np.array([[red, red], [red, [0, 0, 0, 0, 255]]]),
                                   [0, 0], [None, 2])
  figs.update(pixel_subsets.outputs(subsets, [1, 2], ("a", "b", "c"), {"model": "m"}).figures)
  return figs


def test_every_kind_is_drawn_from_its_json_and_redrawn(outputs, tmp_path):
  kinds = {kind for kind, _ in outputs.values()}
  assert kinds == set(figures.DRAW) - {"geometry"}  # geometry needs probing data of a real run
  for name, (kind, data) in outputs.items():
    formats = figures.FORMATS if name == "fig6" else (".png",)  # PDFs once: they take longest
    written = figures.save(tmp_path, name, kind, data, formats)
    assert [p.rsplit(".", 1)[1] for p in written] == ["json", "png", "pdf"][:1 + len(formats)]
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    with open(tmp_path / f"{name}.json") as f:
      assert json.load(f)["figure"] == kind
  for name in ("probe_curves", "fig6"):  # the JSON alone draws the same figure again
    png = tmp_path / f"{name}.png"
    size = png.stat().st_size
    png.unlink()
    assert figures.redraw(tmp_path / f"{name}.json")[0] == str(png)  # PNG and PDF
    assert abs(png.stat().st_size - size) < 0.05 * size, name
  # A PDF carries no creation date, so redrawing the same data later writes the same bytes.
  pdf = (tmp_path / "fig6.pdf").read_bytes()
  assert b"/CreationDate" not in pdf
  assert figures.redraw(tmp_path / "fig6.json") and (tmp_path / "fig6.pdf").read_bytes() == pdf


def test_redraw_of_a_folder_and_of_bad_input(outputs, tmp_path):
  kind, data = outputs["fig6"]
  figures.save(tmp_path, "fig6", kind, data)
  (tmp_path / "not_a_figure.json").write_text("{}")
  assert figures.redraw(tmp_path) == [str(tmp_path / "fig6.png"), str(tmp_path / "fig6.pdf")]
  with pytest.raises(ValueError, match="unknown figure kind 'nope'"):
    figures.draw({"figure": "nope"}, str(tmp_path / "x"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no figure .json files"):
    figures.redraw(tmp_path / "empty")


def test_json_round_trip_of_nan_and_numpy():
  data = figures.jsonable({"a": np.array([1.0, np.nan]), "b": np.int64(3), "c": (np.float32(0.5), np.bool_(True))})
  assert data == {"a": [1.0, None], "b": 3, "c": [0.5, True]}
  np.testing.assert_array_equal(figures.arr(data["a"]), [1.0, np.nan])


def test_examples_circle_the_changed_pixel(tmp_path):
  images = {7: syn.grey_images(1)[0]}
  rec = {"id": 7, "label": 0, "target": None, "success": True, "predicted": 1, "adversarial_prob": 0.9,
         "perturbation": [[syn.HOT[0], syn.HOT[1], 255, 0, 0]], "clean_prob": 0.8}
  fig = figures.examples(images, [rec], ["grey", "red"])
  top, bottom = fig.axes
  np.testing.assert_array_equal(top.images[0].get_array(), images[7])
  assert bottom.images[0].get_array()[syn.HOT[1], syn.HOT[0]].tolist() == [255, 0, 0]
  (circle,) = bottom.patches
  assert circle.center == tuple(syn.HOT) and "red (90%)" in bottom.get_xlabel()
  assert figures.examples(images, [rec], path=str(tmp_path / "e.png")) == str(tmp_path / "e.png")
  assert (tmp_path / "e.png").stat().st_size > 1000


def test_importing_the_library_does_not_import_matplotlib():
  code = ("import sys, pkgutil, importlib, onepixel_jax\n"
          "for m in pkgutil.walk_packages(onepixel_jax.__path__, 'onepixel_jax.'):\n"
          "  importlib.import_module(m.name)\n"
          "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
          "print('ok')")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
