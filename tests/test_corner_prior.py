"""The learned corner prior: its features, targets, fit, held-out scoring and its method."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import corner_prior, methods, perturb
from onepixel_jax.analysis import corner_search
from tests.synthetic import HOT, H, W, two_class
from tests.synthetic import random_images as images


def test_fit_recovers_linear_weights():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(5, 200, len(corner_prior.FEATURES)))
  w = rng.normal(size=len(corner_prior.FEATURES))
  np.testing.assert_allclose(corner_prior.fit(feats, feats @ w, ridge=1e-12), w, atol=1e-6)
  # The ridge shrinks the weights towards 0.
  assert np.linalg.norm(corner_prior.fit(feats, feats @ w, ridge=10.0)) < 0.5 * np.linalg.norm(w)


def test_targets_mark_each_images_lowest_margins():
  margins = np.array([[3.0, 1.0, 2.0, 0.0], [0.0, 5.0, -1.0, 2.0]])
  np.testing.assert_array_equal(corner_prior.targets(margins, top=0.5), [[0, 1, 0, 1], [1, 0, 1, 0]])
  np.testing.assert_array_equal(corner_prior.targets(margins, top=0.01), [[0, 0, 0, 1], [0, 0, 1, 0]])


def test_order_success_counts_images_fooled_within_each_budget():
  scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
  flips = np.array([[False, True, False], [False, False, False], [True, False, False]])
  # Image 0 flips at its 2nd query, image 1 never, image 2 at its 3rd.
  assert corner_prior.order_success(scores, flips, (1, 2, 3)) == {1: 0, 2: 1, 3: 2}


def test_cross_validate_scores_the_learned_order_on_held_out_images():
  """One feature marks each image's flipping candidate: the order learned on
  the other folds tries it first, so every vulnerable image falls at query 1."""
  rng = np.random.default_rng(1)
  margins = rng.uniform(0.5, 2.0, (8, 30))
  winner = rng.integers(0, 30, 8)
  margins[np.arange(6), winner[:6]] = -1.0  # images 6 and 7 cannot be fooled
  marked = np.zeros((8, 30))
  marked[np.arange(8), winner] = 1.0
  feats = np.stack([marked, rng.normal(size=(8, 30))], -1)
  reverse = -np.tile(np.arange(30.0), (8, 1))
  cv = corner_prior.cross_validate(feats, margins, {"in_order": reverse}, ridge=1e-6, budgets=(1, 30))
  assert cv["learned"] == {1: 6, 30: 6} and cv["images"] == 8 and cv["vulnerable"] == 6
  assert cv["in_order"] == corner_prior.order_success(reverse, margins < 0, (1, 30))


def test_features_known_values():
  im = images(1)[0]
  im[0, 0] = 0  # a black pixel: white is its farthest corner, at the whole diagonal
  f = np.asarray(corner_prior.features(jnp.asarray(im)))
  assert f.shape == (H * W, 8, len(corner_prior.FEATURES))
  col = {name: i for i, name in enumerate(corner_prior.FEATURES)}
  rank = f[:, :, col["rank_0"]:col["rank_0"] + 8].argmax(-1)
  d = ((im.reshape(-1, 1, 3).astype(float) - corner_prior.CORNERS[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(rank, np.argsort(np.argsort(-d, 1, kind="stable"), 1, kind="stable"))  # OPPSLA's
  assert rank[0, 7] == 0  # white is the black pixel's farthest colour
  np.testing.assert_array_equal(f[0, :, col["corner_0"]:col["corner_0"] + 8], np.eye(8))
  assert f[0, 7, col["dist_own"]] == pytest.approx(1.0) and f[0, 0, col["dist_own"]] == 0.0
  centre = f[:, 0, col["centre"]].reshape(H, W)
  assert centre[0, 0] == centre.max() and centre[H // 2, W // 2] == centre.min()


def test_corner_search_margins_equal_the_dense_evaluation():
  im = images(2)
  labels = np.zeros(2, int)
  m = corner_search.margins(two_class, im, labels)
  assert m.shape == (2, H * W * 8)
  for i, code in [(0, 0), (1, (HOT[1] * W + HOT[0]) * 8 + 5), (0, 77)]:
    pos, c = divmod(code, 8)
    pix = np.array([[pos % W, pos // W, *corner_prior.CORNERS[c]]])
    probs = two_class(perturb.apply(im[i], pix)[None])
    want = methods.margin_loss(probs, jnp.array([0]), jnp.array([-1]))[0]
    assert m[i, code] == pytest.approx(float(want), rel=1e-5, abs=1e-5)
  assert (m[1, (HOT[1] * W + HOT[0]) * 8 + 5] < 0) and (m >= 0).sum() > 0.9 * m.size  # magenta at HOT flips


def _first_success(method, image, steps):
  """The 1-based query at which ``method`` first fools two_class on ``image`` (None: not within steps)."""
  state = method.init(None, jnp.asarray(image), 0, -1)
  for step in range(steps):
    cand = method.ask(None, state, step, None)
    adv = np.stack([perturb.apply(image, np.asarray(c, np.int32)[None]) for c in np.asarray(cand)])
    probs = two_class(adv)
    flips = np.asarray(probs).argmax(1) != 0
    if flips.any():
      return step * method.popsize + int(flips.argmax()) + 1
    state = method.tell(state, cand, probs, jnp.array(0), jnp.array(-1), jnp.ones(len(cand), bool))
  return None


def test_learned_prior_steers_the_search():
  """With only the prior (no adaptation), a prior preferring magenta tries
  magenta everywhere first, positions in index order: the planted pixel
  (magenta wins there) at query HOT's index + 1. One preferring black (which
  never wins) finds nothing in those queries."""
  image = images(1)[0]
  found = {}
  for corner in (5, 0):
    w = np.zeros(len(corner_prior.FEATURES))
    w[corner_prior.FEATURES.index(f"corner_{corner}")] = 1.0
    m = methods.LearnedCorners(pixels=1, popsize=16, height=H, width=W, weights=tuple(w), prior_weight=100.0,
                               drop_weight=0.0, explore=0.0)
    found[corner] = _first_success(m, image, H * W // 16)
  assert found == {5: HOT[1] * W + HOT[0] + 1, 0: None}


def test_load_checks_the_features(tmp_path):
  assert len(corner_prior.load()) == len(corner_prior.FEATURES)  # the bundled prior
  bad = tmp_path / "prior.json"
  bad.write_text(json.dumps({"features": ["dist_own"], "weights": [1.0]}))
  with pytest.raises(ValueError, match="do not match corner_prior.FEATURES; refit it"):
    corner_prior.load(bad)


def test_fit_corner_prior_end_to_end_and_resume(cifar10_tarball, tmp_path):
  from tests.helpers import run_module
  work, out = tmp_path / "work", tmp_path / "prior.json"
  args = ("--model=convsmall", "--num_images=2", f"--data={cifar10_tarball}", f"--workdir={work}", f"--out={out}")
  proc = run_module("experiments.fit_corner_prior", *args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "images 1-2 of 2" in proc.stdout
  spec = json.loads(out.read_text())
  assert spec["features"] == list(corner_prior.FEATURES) and spec["split"] == "val" and len(spec["ids"]) == 2
  assert corner_prior.load(out) == tuple(spec["weights"])
  cv = spec["held_out_success"]
  assert cv["images"] == 2 and set(cv) >= {"learned", "prioritized_corners", "vulnerable"}
  (margins,) = [np.load(p) for p in work.iterdir()]
  assert margins.shape == (2, 32 * 32 * 8)
  # A rerun finds the margins in --workdir and queries nothing.
  again = run_module("experiments.fit_corner_prior", *args)
  assert again.returncode == 0 and "images 1-2" not in again.stdout
  assert json.loads(out.read_text())["weights"] == spec["weights"]


def _prior_file(path, corner):
  w = [0.0] * len(corner_prior.FEATURES)
  w[corner_prior.FEATURES.index(f"corner_{corner}")] = 1.0
  path.write_text(json.dumps({"features": list(corner_prior.FEATURES), "weights": w}))
  return str(path)


def test_attack_config_takes_a_prior_file(tmp_path):
  import onepixel_jax as op
  first = {}
  for corner in (5, 0):  # magenta wins at the planted pixel, black never does
    cfg = op.AttackConfig(method="learned_corners", popsize=16, generations=H * W * 8 // 16 - 1,
                          early_stop="misclassify", corner_prior=_prior_file(tmp_path / f"{corner}.json", corner))
    r = op.attack(two_class, images(2), np.zeros(2, int), config=cfg, progress=False)
    assert r.success.all()
    first[corner] = r.first_success_query
  assert (first[5] <= H * W).all() and (first[0] > H * W).all(), first
  with pytest.raises(ValueError, match="corner_prior is learned_corners' prior; method is 'de'"):
    op.AttackConfig(corner_prior=_prior_file(tmp_path / "x.json", 1))
  with pytest.raises(ValueError, match="corner_prior '.*missing.json' is unusable"):
    op.AttackConfig(method="learned_corners", corner_prior=str(tmp_path / "missing.json"))
