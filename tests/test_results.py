"""AttackResult, its records (the JSONL codec) and the success rule."""

import dataclasses
import json

import numpy as np
import pytest

import onepixel_jax as op
from onepixel_jax import results
from tests import synthetic as syn


@pytest.fixture
def result(small_result):
  return small_result[1]


def test_success_rule_truth_table():
  predicted = np.array([2, 1, 1, 0])
  labels = np.array([0, 0, 1, 1])
  targets = np.array([2, 2, -1, -1])
  # targeted: hit the target / missed it; non-targeted: stayed true / left it.
  assert results.succeeded(predicted, labels, targets).tolist() == [True, False, False, True]
  assert bool(results.succeeded(3, 3, -1)) is False and bool(results.succeeded(3, 0, 3)) is True


def test_records_round_trip_through_json(result):
  recs = json.loads(json.dumps(result.records()))
  assert [r["pixels"] for r in recs] == [2] * 3 and [r["popsize"] for r in recs] == [8] * 3
  again = op.AttackResult.from_records(recs)
  for f in dataclasses.fields(result):
    np.testing.assert_array_equal(getattr(again, f.name), getattr(result, f.name), err_msg=f.name)
  # Each record's success is the rule applied to its own fields.
  for r in recs:
    assert r["success"] == bool(results.succeeded(r["predicted"], r["label"], -1 if r["target"] is None else r["target"]))


def test_records_written_before_popsize_and_pixels_still_load(result):
  old = [{k: v for k, v in r.items() if k not in ("popsize", "pixels")} for r in result.records()]
  again = op.AttackResult.from_records(old)
  np.testing.assert_array_equal(again.popsize, result.popsize)  # from queries / (generations + 1)
  assert again.perturbation.shape == (3, 2, 5)


def test_take_concatenate_and_empty(result):
  order = np.array([2, 0, 1])
  parts = [result.take(order[:1]), result.take(order[1:])]
  joined = op.AttackResult.concatenate(parts)
  syn.assert_same(joined, result.take(order))
  empty = op.AttackResult.empty(pixels=2, generations=3)
  assert len(empty) == 0 and empty.perturbation.shape == (0, 2, 5) and empty.fitness_history.shape == (0, 4)
  assert np.isnan(empty.success_rate)


def test_jsonl_append_read_repair(tmp_path):
  path = tmp_path / "r.jsonl"
  assert results.read(path) == [] and results.repair(path) == 0
  results.append(path, [{"id": 1}, {"id": 2}])
  with open(path, "ab") as f:
    f.write(b'{"id": 3')  # torn by a kill
  assert results.read(path) == [{"id": 1}, {"id": 2}]
  assert results.repair(path) == len(b'{"id": 3')
  results.append(path, [{"id": 3}])
  assert [r["id"] for r in results.read(path)] == [1, 2, 3]
  path.write_text('{"id": 1}\nnot json\n')
  with pytest.raises(ValueError, match=r"r\.jsonl:2 is not a JSON record"):
    results.read(path)


def test_check_resumable_compares_added_keys_only_where_recorded(tmp_path):
  path = tmp_path / "config.json"
  results.check_resumable(str(path), {"seed": 0, "weights_sha256": "a"})  # no file: a new run
  path.write_text(json.dumps({"seed": 0}))  # written before the weights were recorded
  results.check_resumable(str(path), {"seed": 0, "weights_sha256": "a"}, added=("weights_sha256",))
  with pytest.raises(ValueError, match=r"other settings \(weights_sha256 differ\)"):
    results.check_resumable(str(path), {"seed": 0, "weights_sha256": "a"})
  path.write_text(json.dumps({"seed": 0, "weights_sha256": "b"}))
  with pytest.raises(ValueError, match=r"other settings \(seed, weights_sha256 differ\)"):
    results.check_resumable(str(path), {"seed": 1, "weights_sha256": "a"}, added=("weights_sha256",))
  results.check_resumable(str(path), {"seed": 0, "weights_sha256": "b"}, added=("weights_sha256",))
