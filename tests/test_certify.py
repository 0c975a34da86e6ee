"""One-pixel certificates: the cone equals the network, bounds contain the
truth and are at least as tight as interval bounds, and branch and bound's
verdicts equal the enumeration of every position x every colour of a box.
(Soundness on the bundled ConvSmall: tests/test_verify.py.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from onepixel_jax import models
from onepixel_jax.analysis import certify as C
from onepixel_jax.models import incremental

HW = (4, 4)


def _tiny(kind: str, seed: int = 0):
  """(layers, variables) of a tiny random network on 4x4 images, 3 classes.

  "convsmall": conv 3x3 -> 4 (bias, ReLU), conv 3x3/2 -> 4 (bias, ReLU),
  dense 8 (ReLU), dense 3: ConvSmall's layer types. "allconv": conv+BN+ReLU,
  conv/2+BN+ReLU, conv 1x1 -> 3 (bias), global mean: AllConv's.
  """
  rng = np.random.default_rng(seed)
  f = lambda *s: jnp.asarray(rng.standard_normal(s) * np.sqrt(2.0 / np.prod(s[:-1])), jnp.float32)  # noqa: E731
  b = lambda n: jnp.asarray(rng.normal(0, 0.3, n), jnp.float32)  # noqa: E731
  if kind == "convsmall":
    layers = (incremental.Conv("c0", 3, 1, bn=False, relu=True), incremental.Conv("c1", 3, 2, bn=False, relu=True),
              incremental.Dense("d0"), incremental.Dense("d1", relu=False))
    params = {"c0": {"kernel": f(3, 3, 3, 4), "bias": b(4)}, "c1": {"kernel": f(3, 3, 4, 4), "bias": b(4)},
              "d0": {"kernel": f(16, 8), "bias": b(8)}, "d1": {"kernel": f(8, 3), "bias": b(3)}}
    return layers, {"params": params, "batch_stats": {}}
  bn = lambda n: {"scale": 1 + b(n), "bias": b(n)}  # noqa: E731
  stats = lambda n: {"BatchNorm_0": {"mean": b(n), "var": jnp.asarray(rng.uniform(0.5, 2, n), jnp.float32)}}  # noqa: E731
  layers = (incremental.Conv("b0", 3), incremental.Conv("b1", 3, 2), incremental.Conv("out", 1, bn=False),
            incremental.GlobalMean())
  params = {"b0": {"Conv_0": {"kernel": f(3, 3, 3, 4)}, "BatchNorm_0": bn(4)},
            "b1": {"Conv_0": {"kernel": f(3, 3, 4, 4)}, "BatchNorm_0": bn(4)},
            "out": {"kernel": f(1, 1, 4, 3), "bias": b(3)}}
  return layers, {"params": params, "batch_stats": {"b0": stats(4), "b1": stats(4)}}


@functools.lru_cache(maxsize=None)
def _setup(kind: str, seed: int = 0):
  layers, variables = _tiny(kind, seed)
  logits = jax.jit(lambda x: incremental.logits(layers, variables, x))
  predict = lambda x: jax.nn.softmax(logits(jnp.asarray(x)))  # noqa: E731
  net = C.network(layers, variables, HW)
  image = np.random.default_rng(seed + 100).integers(0, 256, (*HW, 3), dtype=np.uint8)
  label = int(np.asarray(logits(image[None])).argmax())
  return net, logits, predict, image, label


def _enumerate(logits, image, lo, hi):
  """int[H, W, n] the class at every position x every colour of the box, and the colours int[n, 3]."""
  axes = [np.arange(a, b + 1) for a, b in zip(lo, hi)]
  colours = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
  h, w = image.shape[:2]
  out = np.zeros((h, w, len(colours)), int)
  for y in range(h):
    for x in range(w):
      imgs = np.repeat(image[None], len(colours), 0)
      imgs[:, y, x] = colours
      out[y, x] = np.asarray(logits(imgs)).argmax(-1)
  return out, colours


@functools.partial(jax.jit, static_argnums=0)
def _bounds(layers, params, image, pos, lo, hi):
  """(cone, linear bounds, interval bounds, margin lower bounds for label 0:
  [back-substituted everywhere, intermediate layers by intervals only])."""
  acts = C.clean_activations(C.Network(layers, params, HW), image)
  cone = C.cone(layers, params, acts, image, pos)
  rows = C.margin_rows(0, -1, 3)[0]
  low = jnp.stack([C.margin_bounds(layers, cone, lo, hi, rows, limit)[0] for limit in (None, 0)])
  return cone, C.linear_bounds(layers, cone, lo, hi), C.interval_bounds(layers, cone, lo, hi), low


@functools.partial(jax.jit, static_argnums=0)
def _forward(layers, cone, colours):
  """The cone's pre-activations at colours float[n, 3]: [float[n, n_k], ...]."""
  return jax.vmap(C.forward, (None, None, 0))(layers, cone, colours)


@pytest.mark.parametrize("kind", ["convsmall", "allconv"])
def test_cone_equals_the_network(kind):
  """The cone's logits at any colour are the network's (dense, every layer) logits."""
  net, logits, _, image, _ = _setup(kind)
  acts = C.clean_activations(net, image)
  np.testing.assert_allclose(np.asarray(acts[-1]), np.asarray(logits(image[None]))[0], atol=1e-5)
  rng = np.random.default_rng(1)
  for y, x in [(0, 0), (3, 3), (1, 2), (3, 0)]:
    cone = _bounds(net.layers, net.params, image, jnp.asarray([y, x]), jnp.zeros(3), jnp.ones(3))[0]
    assert [len(b) for b in cone[1]] == C.cone_sizes(net)
    colours = rng.integers(0, 256, (5, 3))
    got = np.asarray(_forward(net.layers, cone, jnp.asarray(colours, jnp.float32))[-1])
    imgs = np.repeat(image[None], 5, 0)
    imgs[:, y, x] = colours
    want = np.asarray(logits(imgs))
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1, np.abs(want).max()))
    assert np.abs(want - want[:1]).max() > 1e-3  # the colour matters: not a trivial agreement


def _boxes():
  chan = st.tuples(st.integers(0, 255), st.integers(0, 255)).map(sorted)
  return st.tuples(st.sampled_from(["convsmall", "allconv"]), st.integers(0, 3), st.integers(0, 3),
                   st.tuples(chan, chan, chan), st.integers(0, 2 ** 31 - 1))


@settings(max_examples=15, deadline=None)
@given(_boxes())
def test_bounds_contain_the_truth_and_beat_intervals(case):
  kind, y, x, chans, seed = case
  net, _, _, image, _ = _setup(kind)
  lo = jnp.asarray([c[0] for c in chans], jnp.float32)
  hi = jnp.asarray([c[1] for c in chans], jnp.float32)
  cone, lin, ibp, low = _bounds(net.layers, net.params, image, jnp.asarray([y, x]), lo, hi)
  rng = np.random.default_rng(seed)
  corners = np.array(np.meshgrid(*[[a, b] for a, b in chans], indexing="ij")).reshape(3, -1).T
  colours = np.concatenate([corners, rng.integers(np.asarray(lo, int), np.asarray(hi, int) + 1, (20, 3))])
  forward = _forward(net.layers, cone, jnp.asarray(colours, jnp.float32))
  for i in range(len(colours)):
    for z, (l, u), (il, iu) in zip([f[i] for f in forward], lin, ibp):
      slack = 1e-5 * (1 + float(jnp.abs(z).max()))
      assert np.all(np.asarray(l) <= np.asarray(z) + slack) and np.all(np.asarray(z) <= np.asarray(u) + slack)
      assert np.all(np.asarray(il) <= np.asarray(l) + slack) and np.all(np.asarray(u) <= np.asarray(iu) + slack)
  # Margin bounds contain the true margins too.
  m = np.asarray(forward[-1] @ C.margin_rows(0, -1, 3)[0].T)
  assert np.all(np.asarray(low)[:, None] <= m[None] + 1e-5 * (1 + np.abs(m).max()))


def test_back_substitution_is_tighter_than_intervals():
  """On whole-range boxes the logits' bounds are strictly tighter than IBP's
  (the reason for back-substitution); not merely equal."""
  for kind in ("convsmall", "allconv"):
    net, _, _, image, _ = _setup(kind)
    lo, hi = jnp.zeros(3), jnp.full(3, 255.0)
    wl = wi = 0.0
    for y in range(4):
      for x in range(4):
        _, lin, ibp, _ = _bounds(net.layers, net.params, image, jnp.asarray([y, x]), lo, hi)
        (l, u), (il, iu) = lin[-1], ibp[-1]
        wl, wi = wl + float(jnp.sum(u - l)), wi + float(jnp.sum(iu - il))
    assert wl < 0.9 * wi, (kind, wl, wi)


# Boxes (red over its whole range) where some positions are vulnerable and some robust.
@pytest.mark.parametrize("kind,seed,target,box", [
    ("convsmall", 0, -1, ((0, 0, 144), (255, 5, 149))),
    ("allconv", 1, -1, ((0, 0, 48), (255, 5, 53))),
    ("convsmall", 0, 2, ((0, 0, 0), (255, 5, 5))),
    ("allconv", 1, 0, ((0, 0, 48), (255, 5, 53))),
])
def test_verdicts_equal_the_enumeration(kind, seed, target, box):
  """Soundness and completeness: with no budget limit every position is
  decided, a position is robust iff no colour of the box succeeds, and every
  reported colour succeeds."""
  net, logits, predict, image, label = _setup(kind, seed)
  assert target != label
  cert = C.certify(net, predict, image, label, target, box=box, batch=64)
  classes, colours = _enumerate(logits, image, *box)
  succeeds = (classes == target) if target >= 0 else (classes != label)
  truth = succeeds.any(-1)
  assert not cert.exhausted and cert.counts["unknown"] == 0
  np.testing.assert_array_equal(cert.status == C.VULNERABLE, truth)
  assert 0 < truth.sum() < truth.size, "the box must hold robust and vulnerable positions for the test to bite"
  for y, x in zip(*np.nonzero(truth)):
    c = cert.colour[y, x]
    assert np.all(np.asarray(box[0]) <= c) and np.all(c <= np.asarray(box[1]))
    k = int(np.flatnonzero((colours == c).all(1))[0])
    assert succeeds[y, x, k]
  assert cert.verdict == "vulnerable" and cert.pixel[:2] == [int(np.nonzero(truth)[1][0]), int(np.nonzero(truth)[0][0])]
  # Branch and bound did real work: some box was split, and most were not enumerated.
  assert cert.boxes.max() > 1 and cert.boxes.sum() < len(colours) * truth.size / 10


def test_budget_leaves_positions_unknown_and_seeds_are_confirmed():
  net, logits, predict, image, label = _setup("convsmall")
  box = ((0, 0, 144), (255, 5, 149))
  full = C.certify(net, predict, image, label, box=box, batch=64)
  cut = C.certify(net, predict, image, label, box=box, max_boxes=10, batch=64)
  assert cut.exhausted and cut.counts["unknown"] > 0 and cut.verdict != "robust"
  assert int(cut.boxes.sum()) == 10
  # Decided positions agree with the full run.
  done = cut.status != C.UNKNOWN
  np.testing.assert_array_equal(cut.status[done], full.status[done])
  # A seed that succeeds makes its position vulnerable without a box; a wrong seed does nothing.
  y, x = np.argwhere(full.status == C.VULNERABLE)[0]
  seeds = np.full((*HW, 3), -1)
  seeds[y, x] = full.colour[y, x]
  ry, rx = np.argwhere(full.status == C.ROBUST)[0]
  seeds[ry, rx] = (128, 3, 146)
  seeded = C.certify(net, predict, image, label, box=box, seeds=seeds, batch=64)
  assert seeded.boxes[y, x] == 0 and seeded.status[y, x] == C.VULNERABLE
  np.testing.assert_array_equal(seeded.status, full.status)


def test_bad_input_is_a_clear_error():
  net, _, predict, image, label = _setup("convsmall")
  with pytest.raises(ValueError, match="box must satisfy"):
    C.certify(net, predict, image, label, box=((0, 0, 10), (255, 255, 5)))
  with pytest.raises(ValueError, match="is the label"):
    C.certify(net, predict, image, label, target=label)
  with pytest.raises(ValueError, match="network takes"):
    C.certify(net, predict, np.zeros((5, 5, 3), np.uint8), label)
  with pytest.raises(ValueError, match="max pooling"):
    C.network(incremental.describe(models.create("nin")), None)


@pytest.fixture(scope="module")
def convsmall():
  return models.load("convsmall")


def test_point_boxes_match_the_model_far_inside_the_margin(convsmall):
  """The floating-point margin: on single colours, the bound and the model's
  own margin differ by far less than the tolerance a bound must clear."""
  net = C.from_model(convsmall)
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
  acts = C.clean_activations(net, image)
  tol = C.EPS_REL * (1 + float(jnp.abs(acts[-1]).max()))
  pos = np.array([[0, 0], [31, 31], [7, 20], [16, 3]], np.int32)
  colours = rng.integers(0, 256, (4, 3))
  label = int(np.asarray(acts[-1]).argmax())
  res = C.bound_boxes(net.layers, net.params, acts, jnp.asarray(image), label, -1, 0.0,
                      jnp.asarray(pos), jnp.asarray(colours, jnp.float32), jnp.asarray(colours, jnp.float32))
  imgs = np.repeat(image[None], 4, 0)
  imgs[np.arange(4), pos[:, 0], pos[:, 1]] = colours
  z = np.asarray(convsmall.logits(convsmall.variables, imgs))
  margins = z[:, label:label + 1] - z
  lower = np.asarray(res["lower"])
  ok = np.isfinite(lower)
  assert ok.sum() == 4 * 9
  assert np.abs(lower[ok] - margins[ok]).max() < tol / 10
