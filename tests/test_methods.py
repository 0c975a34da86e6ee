"""Search methods: known answers on synthetic classifiers, query accounting,
batch-size and device-count invariance, the pieces each method is built of."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import onepixel_jax as op
from onepixel_jax import methods, results

from tests.helpers import run_on_host_devices
from tests.synthetic import HOT, H, W, assert_same, two_class
from tests.synthetic import random_images as images

# Recolourings of the black pixel HOT that two_class classifies as class 1 (redness > 0.25).
WINNING = {(255, 0, 0), (255, 0, 255), (255, 255, 0)}


def config(method, budget=2048, **kw):
  return op.AttackConfig(method=method, popsize=16, generations=199, query_budget=budget,
                         early_stop="misclassify", **kw)


@pytest.mark.parametrize("method", methods.METHODS)
def test_every_method_finds_the_planted_pixel(method):
  im = images(4)
  r = op.attack(two_class, im, np.zeros(4, int), config=config(method), progress=False)
  assert r.success.all()
  assert (r.perturbation[:, 0, :2] == HOT).all()
  assert (r.method == method).all()
  # The reported pixel succeeds, and the first success came within the queries made.
  assert (np.asarray(two_class(r.adversarial_images(im))).argmax(1) == 1).all()
  assert ((r.first_success_query > 0) & (r.first_success_query <= r.queries)).all()
  # misclassify stops at the step of the first success.
  assert (r.queries - r.first_success_query < 16).all()
  if method in ("corner", "sparse_rs", "prioritized_corners", "guided_corners"):
    assert {tuple(p) for p in r.perturbation[:, 0, 2:]} <= WINNING


def test_prioritized_corners_follows_oppsla_order_exactly():
  """HOT is black, so its farthest corner is white (fails), then the three
  two-channel corners tie and go in corner order: cyan (fails), magenta (wins).
  Each rank visits all 64 positions by distance from the centre first."""
  yy, xx = np.divmod(np.arange(H * W), W)
  centre = (yy - (H - 1) / 2) ** 2 + (xx - (W - 1) / 2) ** 2
  rank_of_hot = list(np.argsort(centre, kind="stable")).index(HOT[1] * W + HOT[0])
  expected = 2 * H * W + rank_of_hot + 1
  im = images(3)
  r = op.attack(two_class, im, np.zeros(3, int), config=config("prioritized_corners"), progress=False)
  assert (r.first_success_query == expected).all()
  assert (r.perturbation[:, 0] == [*HOT, 255, 0, 255]).all()


def test_corner_visits_every_pair_once():
  m = methods.Corner(pixels=1, popsize=64, height=H, width=W)
  order = m.init(jax.random.PRNGKey(3), jnp.zeros((H, W, 3), jnp.uint8), 0, -1)
  cand = np.concatenate([np.asarray(m.ask(None, order, s, None)) for s in range(8)])
  pairs = {tuple(c) for c in cand.astype(int)}
  assert len(pairs) == H * W * 8 and m.budget() == H * W * 8
  assert {tuple(c[2:]) for c in pairs} == {tuple(c) for c in methods.CORNERS}


def test_budget_is_exact_and_failures_use_all_of_it():
  """A budget that is not a multiple of the step: the last step's extra
  proposals are not counted and cannot win."""
  never = lambda x: jnp.stack([jnp.ones(x.shape[0]), jnp.zeros(x.shape[0])], -1)  # noqa: E731
  for method in methods.METHODS:
    r = op.attack(never, images(2), np.zeros(2, int), config=config(method, budget=37), progress=False)
    assert (r.queries == 37).all() and (r.first_success_query == -1).all() and not r.success.any()
    assert r.fitness_history.shape[1] == 3  # ceil(37 / 16) steps


def test_corner_stops_when_exhausted():
  never = lambda x: jnp.stack([jnp.ones(x.shape[0]), jnp.zeros(x.shape[0])], -1)  # noqa: E731
  r = op.attack(never, images(1), np.zeros(1, int), config=config("corner", budget=3000), progress=False)
  assert r.queries[0] == H * W * 8


@pytest.mark.parametrize("method", methods.METHODS)
def test_batch_size_does_not_change_results(method):
  im = images(5, seed=2)
  labels = np.zeros(5, int)
  cfg = config(method, budget=96)
  a = op.attack(two_class, im, labels, config=cfg, batch_size=1, progress=False)
  b = op.attack(two_class, im, labels, config=cfg, batch_size=4, steps_per_sync=3, progress=False)
  assert_same(a, b)


# One method per kind of state the engine shards: the corner subclasses (prioritized,
# learned) keep their parents' state and differ in its initial values only.
SHARDED_FAMILIES = ("de", "random", "corner", "sparse_rs", "guided_corners")


def test_four_devices_match_one_device_for_every_method_family():
  families = {type(methods.make(op.AttackConfig(method=m), H, W)) for m in SHARDED_FAMILIES}
  for m in methods.METHODS:  # every other method asks and tells as its family does
    cls = type(methods.make(op.AttackConfig(method=m), H, W))
    assert any(issubclass(cls, f) and (cls.ask, cls.tell) == (f.ask, f.tell) for f in families), m
  script = textwrap.dedent(f"""
      import numpy as np, jax
      from tests.synthetic import two_class, assert_same, random_images as images
      import onepixel_jax as op
      assert jax.local_device_count() == 4
      im = images(9)  # 9 attacks in slots of 4 over 4 devices: an uneven last batch
      for m in {SHARDED_FAMILIES!r}:
        cfg = op.AttackConfig(method=m, popsize=16, generations=5, early_stop="misclassify")
        one = op.attack(two_class, im, np.zeros(9, int), config=cfg, batch_size=4, devices=jax.devices()[:1],
                        progress=False)
        four = op.attack(two_class, im, np.zeros(9, int), config=cfg, batch_size=4, progress=False)
        assert_same(one, four)
      print("OK")
  """)
  out = run_on_host_devices(script)
  assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_targeted_sparse_rs_reaches_target():
  from tests.synthetic import three_class
  im = images(3, seed=1)
  r = op.attack(three_class, im, np.zeros(3, int), targets=np.full(3, 2), config=config("sparse_rs"), progress=False)
  assert r.success.all() and (r.predicted == 2).all()
  assert (r.perturbation[:, 0, :2] == HOT).all()
  assert {tuple(p) for p in r.perturbation[:, 0, 2:]} <= {(0, 0, 255), (0, 255, 255), (255, 0, 255)}  # blue > 1/6


def test_sparse_rs_schedule():
  m = methods.SparseRS(pixels=10, popsize=4, height=H, width=W, max_queries=10000)
  got = [int(m.changed(jnp.array(q))) for q in (0, 50, 51, 1000, 5000, 9999)]
  # alpha 0.3 of 10 pixels: 3 at the start, then 0.3/2, /4, /6, /12, /20 of 10 (at least 1).
  assert got == [3, 1, 1, 1, 1, 1]
  # 40 pixels, budget 1,000 (iterations rescaled x10): 0.3, /2 up to 50, /4 up to 200, /5 up to 500.
  m = methods.SparseRS(pixels=40, popsize=4, height=H, width=W, max_queries=1000)
  assert [int(m.changed(jnp.array(q))) for q in (0, 4, 6, 30)] == [12, 6, 3, 2]


def test_sparse_rs_changes_the_scheduled_number_of_pixels():
  m = methods.SparseRS(pixels=10, popsize=64, height=32, width=32, max_queries=10000)
  current = jnp.asarray(np.tile([1.0, 2.0, 7.0, 7.0, 7.0], 10), jnp.float32)
  state = (current, jnp.array(0.5), jnp.array(0, jnp.int32))
  prop = np.asarray(m.ask(jax.random.PRNGKey(0), state, 1, None)).reshape(64, 10, 5)
  changed = (prop != np.asarray(current).reshape(1, 10, 5)).any(-1).sum(1)
  assert (changed == 3).all()  # colours of new pixels are corners, never (7, 7, 7)


def test_objective_and_margin_loss_known_values():
  p = jnp.array([[0.5, 0.3, 0.2]])
  assert float(methods.objective(p, jnp.array([0]), jnp.array([-1]))[0]) == pytest.approx(0.5)
  assert float(methods.objective(p, jnp.array([0]), jnp.array([2]))[0]) == pytest.approx(-0.2)
  assert float(methods.margin_loss(p, jnp.array([0]), jnp.array([-1]))[0]) == pytest.approx(np.log(0.5 / 0.3))
  assert float(methods.margin_loss(p, jnp.array([1]), jnp.array([-1]))[0]) == pytest.approx(np.log(0.3 / 0.5))
  assert float(methods.margin_loss(p, jnp.array([0]), jnp.array([2]))[0]) == pytest.approx(-np.log(0.2))


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="cma"), "method must be one of"),
    (dict(method="corner", pixels=3), "searches one pixel"),
    (dict(query_budget=40_401), r"query_budget must be .* 40400"),
    (dict(query_budget=0), "query_budget must be"),
])
def test_bad_method_settings_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    op.AttackConfig(**kwargs)


def test_first_success_of_records_without_the_field():
  rec = {"label": 3, "target": None, "popsize": 400, "queries": 1600, "generations": 3,
         "predicted_history": [3, 3, 5, 5]}
  assert results.first_success_query(rec) == 1200  # end of generation 2
  assert results.first_success_query({**rec, "predicted_history": [3, 3, 3, 3]}) == -1
  assert results.first_success_query({**rec, "first_success_query": 817}) == 817


def smooth_bump(x):
  """16x16 grey images: class 1 when a pixel near (x, y) = (2, 3) moves far
  from grey; its pull on the margin falls off smoothly with distance."""
  yy, xx = np.mgrid[:16, :16]
  k = jnp.asarray(np.exp(-((xx - 2) ** 2 + (yy - 3) ** 2) / 8.0), jnp.float32)
  f = jnp.abs(x.astype(jnp.float32) - 128.0).mean(-1) / 128.0  # [n, 16, 16]
  logit = 3.0 * jnp.sum(k * f, axis=(1, 2)) - 2.5
  return jax.nn.softmax(jnp.stack([jnp.zeros_like(logit), logit], -1), -1)


def test_guided_corners_follows_the_measured_margin():
  """Both orders are deterministic; the fixed one spirals out from the centre
  and reaches the corner region late, the guided one probes widely and then
  goes where the margin fell."""
  im = np.full((1, 16, 16, 3), 128, np.uint8)
  first = {}
  for m in ("prioritized_corners", "guided_corners"):
    cfg = op.AttackConfig(method=m, popsize=16, generations=127, early_stop="misclassify")
    r = op.attack(smooth_bump, im, np.zeros(1, int), config=cfg, progress=False)
    assert r.success[0] and np.hypot(r.perturbation[0, 0, 0] - 2, r.perturbation[0, 0, 1] - 3) <= 1.5
    first[m] = int(r.first_success_query[0])
  assert first["guided_corners"] * 2 < first["prioritized_corners"], first


def test_guided_corners_never_repeats_a_pair():
  m = methods.GuidedCorners(pixels=1, popsize=64, height=H, width=W)
  state = m.init(None, jnp.asarray(images(1)[0]), 0, -1)
  seen = set()
  for step in range(8):
    cand = m.ask(None, state, step, None)
    codes = np.asarray(methods._corner_codes(cand, W)).tolist()
    assert not seen & set(codes) and len(set(codes)) == 64
    seen |= set(codes)
    probs = jnp.tile(jnp.array([[0.7, 0.3]]), (64, 1))
    state = m.tell(state, cand, probs, jnp.array(0), jnp.array(-1), jnp.ones(64, bool))
  assert len(seen) == H * W * 8
