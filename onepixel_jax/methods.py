"""Few-pixel search methods as pure ``init`` / ``ask`` / ``tell`` strategies.

Every method runs in the same attack loop (:mod:`onepixel_jax.attack`):
continuously batched, sharded, early-stopping, with the same query counting
and records. The loop calls, for one attack (the loop ``vmap``s them over its
slots):

* ``init(key, clean, label, target) -> state``: the attack's state (a pytree
  of arrays of static shape), from its own key and clean image
  ``uint8[H, W, 3]``;
* ``ask(key, state, step, clean) -> float32[Q, 5k]``: the ``Q`` candidates of
  step ``step`` (0 for the first), ``Q = AttackConfig.popsize``;
* ``tell(state, candidates, probs, label, target, valid) -> state``: their
  probabilities ``float32[Q, C]``; ``valid: bool[Q]`` is False for candidates
  past the query budget, whose outcome the method must ignore.

A candidate is ``k`` tuples ``(x, y, r, g, b)`` (:mod:`perturb`); ``target``
is -1 for non-targeted attacks. Methods (``METHODS``):

* ``de``: the paper's differential evolution (Su et al. 2019, Sec. III-C).
* ``random``: the paper's random search (Table VII's baseline): every query a
  fresh draw of DE's initial distribution.
* ``corner``: every position with each of the 8 extreme colours
  ({0, 255}^3), in a random order without repetition: CornerSearch's first
  stage (Croce & Hein, ICCV 2019). 1 pixel; ``H * W * 8`` queries at most.
* ``sparse_rs``: Sparse-RS (Croce et al., AAAI 2022) for ``k`` pixels: from
  the current ``k`` pixels, resample a share ``alpha`` of them at new random
  positions with random extreme colours; keep the change when the margin loss
  (untargeted) or cross-entropy (targeted) improves. ``alpha`` starts at 0.3
  (their CIFAR-10 setting) and falls on their schedule. With ``k = 1`` every
  proposal is a fresh random position and extreme colour.
* ``prioritized_corners``: OPPSLA's fixed order without its synthesised
  program (Yuviler & Drachsler-Cohen, PLDI 2023): at every position the 8
  extreme colours ranked by their distance from the pixel's own colour; all
  positions' farthest colours first, then all second farthest, ...; within a
  rank, positions by their distance from the image centre. 1 pixel.
* ``guided_corners`` (ours): corner pairs chosen by the margins measured so
  far, smoothed over neighbouring positions (:class:`GuidedCorners`). 1 pixel.
* ``learned_corners`` (ours): ``guided_corners`` starting from a prior learned
  on held-out images (:mod:`corner_prior`, :class:`LearnedCorners`). 1 pixel.

Batching: a method proposes ``Q`` candidates per step from the same state
(DE: one generation). Queries are counted one by one in proposal order, so
"success within q queries" is exact for any q.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax import corner_prior, de, perturb

METHODS = ("de", "random", "corner", "sparse_rs", "prioritized_corners", "guided_corners", "learned_corners")
ONE_PIXEL_ONLY = ("corner", "prioritized_corners", "guided_corners", "learned_corners")

CORNERS = corner_prior.CORNERS  # the 8 extreme colours, red slowest: int32[8, 3]

# Sparse-RS (Croce et al. 2022): alpha_init for CIFAR-10 L0 attacks, and the
# schedule dividing it, at iterations rescaled to a budget of 10,000.
SPARSE_RS_ALPHA = 0.3
_SPARSE_RS_BOUNDS = np.array([0, 50, 200, 500, 1000, 2000, 4000, 6000, 8000], np.float32)
_SPARSE_RS_DIVISORS = np.array([1, 2, 4, 5, 6, 8, 10, 12, 15, 20], np.float32)


def objective(probs: jax.Array, label: jax.Array, target: jax.Array) -> jax.Array:
  """The paper's fitness (minimised): the true class's probability, or minus
  the target's. probs: float[..., C] -> float[...]."""
  cls = jnp.where(target >= 0, target, label)
  p = jnp.take_along_axis(probs, jnp.broadcast_to(cls, probs.shape[:-1])[..., None], -1)[..., 0]
  return jnp.where(target >= 0, -p, p)


def margin_loss(probs: jax.Array, label: jax.Array, target: jax.Array) -> jax.Array:
  """Sparse-RS's loss (minimised; float[..., C] -> float[...]): non-targeted,
  ``log p_label - max_{j != label} log p_j`` (the logit margin; negative once
  misclassified); targeted, the cross-entropy ``-log p_target``."""
  logp = jnp.log(jnp.maximum(probs, 1e-30))
  cls = jnp.broadcast_to(jnp.where(target >= 0, target, label), probs.shape[:-1])
  own = jnp.take_along_axis(logp, cls[..., None], -1)[..., 0]
  others = jnp.where(jnp.arange(probs.shape[-1]) == cls[..., None], -jnp.inf, logp).max(-1)
  return jnp.where(target >= 0, -own, own - others)


def _corner_candidates(codes: jax.Array, width: int) -> jax.Array:
  """float32[Q, 5] one-pixel candidates from codes ``position * 8 + corner``."""
  pos, c = codes // 8, codes % 8
  rgb = jnp.asarray(CORNERS, jnp.float32)[c]
  return jnp.concatenate([(pos % width)[:, None].astype(jnp.float32), (pos // width)[:, None].astype(jnp.float32),
                          rgb], axis=1)


@dataclasses.dataclass(frozen=True)
class Method:
  """Base: a stateless method. ``pixels``, ``popsize`` (queries per step),
  ``height``, ``width`` are static."""
  pixels: int
  popsize: int
  height: int
  width: int

  def budget(self) -> int | None:
    """The most queries the method can make (None: unbounded)."""
    return None

  def init(self, key, clean, label, target) -> Any:
    return ()

  def tell(self, state, candidates, probs, label, target, valid) -> Any:
    return state


@dataclasses.dataclass(frozen=True)
class DE(Method):
  """The paper's DE (see :mod:`de`). State: (population float32[Q, 5k],
  fitness float32[Q]); step 0 evaluates the initial population."""
  F: float = 0.5
  strategy: str = "rand1"
  crossover: float | None = None
  dither: tuple[float, float] | None = None

  def init(self, key, clean, label, target):
    pop = perturb.init_candidates(key, self.popsize, self.pixels, self.height, self.width)
    return pop, jnp.full((self.popsize,), jnp.inf, jnp.float32)

  def ask(self, key, state, step, clean):
    population, fitness = state
    lower, upper = (jnp.asarray(v) for v in perturb.bounds(self.pixels, self.height, self.width))
    children = de.ask(key, population, fitness, lower, upper, F=self.F, strategy=self.strategy,
                      crossover=self.crossover, dither=self.dither)
    return jnp.where(step == 0, population, children)

  def tell(self, state, candidates, probs, label, target, valid):
    fit = jnp.where(valid, objective(probs, label, target), jnp.inf)
    return de.tell(*state, candidates, fit)


@dataclasses.dataclass(frozen=True)
class Random(Method):
  """Every query a fresh draw of the paper's initial distribution (Table VII)."""

  def ask(self, key, state, step, clean):
    return perturb.init_candidates(key, self.popsize, self.pixels, self.height, self.width)


@dataclasses.dataclass(frozen=True)
class Corner(Method):
  """Every position x extreme colour in a random order. State: int32[H W 8] the order."""

  def budget(self):
    return self.height * self.width * 8

  def init(self, key, clean, label, target):
    return jax.random.permutation(key, self.budget()).astype(jnp.int32)

  def ask(self, key, state, step, clean):
    i = jnp.minimum(step * self.popsize + jnp.arange(self.popsize), self.budget() - 1)
    return _corner_candidates(state[i], self.width)


@dataclasses.dataclass(frozen=True)
class PrioritizedCorners(Corner):
  """Corner's pairs in OPPSLA's fixed order (deterministic; see the module docstring)."""

  def init(self, key, clean, label, target):
    h, w = self.height, self.width
    rank = corner_prior.corner_rank(clean)  # [HW, 8]
    yy, xx = np.divmod(np.arange(h * w), w)
    centre = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2
    centre_rank = np.argsort(np.argsort(centre, kind="stable"), kind="stable")  # [HW]
    key_ = rank * (h * w) + jnp.asarray(centre_rank)[:, None]  # [HW, 8], all distinct
    return jnp.argsort(key_.reshape(-1)).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class SparseRS(Method):
  """Sparse-RS with ``k`` pixels and extreme colours. State: (current
  candidate float32[5k], its loss float32[], queries made int32[])."""
  alpha: float = SPARSE_RS_ALPHA
  max_queries: int = 10000

  def init(self, key, clean, label, target):
    return (jnp.zeros(5 * self.pixels, jnp.float32), jnp.array(jnp.inf, jnp.float32), jnp.array(0, jnp.int32))

  def _fresh(self, key, n):
    """float32[n, k, 5]: pixels at random positions with random extreme colours."""
    k_pos, k_col = jax.random.split(key)
    pos = jax.random.randint(k_pos, (n, self.pixels), 0, self.height * self.width)
    col = jax.random.randint(k_col, (n, self.pixels), 0, 8)
    return _corner_candidates((pos * 8 + col).reshape(-1), self.width).reshape(n, self.pixels, 5)

  def changed(self, queries: jax.Array) -> jax.Array:
    """How many of the k pixels a proposal resamples after ``queries`` queries (>= 1)."""
    it = queries.astype(jnp.float32) * 10000.0 / self.max_queries
    div = jnp.asarray(_SPARSE_RS_DIVISORS)[jnp.sum(it > jnp.asarray(_SPARSE_RS_BOUNDS))]
    return jnp.maximum(jnp.floor(self.alpha / div * self.pixels), 1).astype(jnp.int32)

  def ask(self, key, state, step, clean):
    current, _, queries = state
    k_new, k_pick = jax.random.split(key)
    q, k = self.popsize, self.pixels
    new = self._fresh(k_new, q)
    # Which pixels each proposal resamples: the first m of a random order.
    order = jax.vmap(lambda kk: jax.random.permutation(kk, k))(jax.random.split(k_pick, q))
    resample = jnp.argsort(order, axis=1) < self.changed(queries)  # [Q, k]
    proposals = jnp.where(resample[..., None], new, current.reshape(1, k, 5))
    return jnp.where(step == 0, new, proposals).reshape(q, 5 * k)

  def tell(self, state, candidates, probs, label, target, valid):
    current, loss, queries = state
    new_loss = jnp.where(valid, margin_loss(probs, label, target), jnp.inf)
    j = jnp.argmin(new_loss)
    better = new_loss[j] < loss
    return (jnp.where(better, candidates[j], current), jnp.where(better, new_loss[j], loss),
            queries + jnp.sum(valid, dtype=jnp.int32))


def _corner_codes(candidates: jax.Array, width: int) -> jax.Array:
  """int32[Q]: ``position * 8 + corner`` of one-pixel corner candidates float32[Q, 5]."""
  c = jnp.round(candidates).astype(jnp.int32)
  corner = (c[:, 2] > 127) * 4 + (c[:, 3] > 127) * 2 + (c[:, 4] > 127)
  return (c[:, 1] * width + c[:, 0]) * 8 + corner


@dataclasses.dataclass(frozen=True)
class GuidedCorners(Method):
  """Ours: corner pairs chosen by what the previous queries measured.

  One pixel's effect is spatially smooth (where one pixel works it works in a
  region; README, "Analysis"), so every query's margin loss (Sparse-RS's) is
  evidence about its neighbours. Each step proposes the ``Q`` untried
  (position, extreme colour) pairs of lowest score

      prior(p, c) - drop(p) - explore * unexplored(p) + centre(p) * centre_weight,
      prior(p, c) = rank(p, c) * rank_weight,

  where ``rank`` is the colour's rank by distance from the pixel's own colour
  (as OPPSLA's order; :class:`LearnedCorners` replaces ``prior`` by a learned
  one), ``drop(p)`` the Gaussian-smoothed (``sigma`` pixels)
  fall of the margin below the median margin measured so far at p's
  neighbours (``drop_weight`` per unit of log-probability margin),
  ``unexplored(p)`` one minus the smoothed density of tried positions (so
  the first steps probe a spread-out lattice) and ``centre(p)`` the
  distance from the image centre in units of the image size. State: the
  margins measured (float32[H W, 8], +inf untried) and ``prior``
  (float32[H W, 8]). 1 pixel; H W 8 queries at most.
  """
  sigma: float = 2.0
  rank_weight: float = 1.0
  drop_weight: float = 4.0
  explore: float = 2.0
  centre_weight: float = 1.0

  def budget(self):
    return self.height * self.width * 8

  def init(self, key, clean, label, target):
    return (jnp.full((self.height * self.width, 8), jnp.inf, jnp.float32), self.prior(clean))

  def prior(self, clean) -> jax.Array:
    """float32[H W, 8]: each pair's own score (lower first): ``rank * rank_weight``."""
    return corner_prior.corner_rank(clean) * self.rank_weight

  def _smooth(self, x):
    """float32[H, W] -> Gaussian-smoothed (weights exp(-d^2 / 2 sigma^2), 1 at d = 0), same shape."""
    def kernel(n):
      t = np.arange(n, dtype=np.float32)
      return jnp.asarray(np.exp(-0.5 * ((t[:, None] - t[None, :]) / self.sigma) ** 2), jnp.float32)
    return kernel(self.height) @ x @ kernel(self.width)

  def scores(self, state) -> jax.Array:
    """float32[H W, 8]: lower is tried first; +inf where tried."""
    margins, prior = state
    h, w = self.height, self.width
    tried = jnp.isfinite(margins)
    seen = tried.any(1)
    best = jnp.where(seen, jnp.min(margins, 1), 0.0)
    ref = jnp.nanmedian(jnp.where(seen, best, jnp.nan))
    ref = jnp.where(seen.any(), ref, 0.0)
    drop = jnp.where(seen, jnp.maximum(ref - best, 0.0), 0.0).reshape(h, w)
    weight = self._smooth(seen.reshape(h, w).astype(jnp.float32))  # >= 1 at a tried position
    est = self._smooth(drop) / jnp.maximum(weight, 1.0)
    unexplored = 1.0 - jnp.minimum(weight, 1.0)
    yy, xx = jnp.divmod(jnp.arange(h * w), w)
    centre = jnp.sqrt((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / max(h, w)
    pos = (-self.drop_weight * est - self.explore * unexplored).reshape(-1) + self.centre_weight * centre
    return jnp.where(tried, jnp.inf, prior + pos[:, None])

  def ask(self, key, state, step, clean):
    _, codes = jax.lax.top_k(-self.scores(state).reshape(-1), self.popsize)
    return _corner_candidates(codes.astype(jnp.int32), self.width)

  def tell(self, state, candidates, probs, label, target, valid):
    margins, prior = state
    codes = _corner_codes(candidates, self.width)
    loss = margin_loss(probs, label, target)
    flat = margins.reshape(-1)
    flat = flat.at[jnp.where(valid, codes, flat.shape[0])].set(loss, mode="drop")
    return flat.reshape(margins.shape), prior


@dataclasses.dataclass(frozen=True)
class LearnedCorners(GuidedCorners):
  """Ours: :class:`GuidedCorners` with a learned prior (:mod:`corner_prior`):

      prior(p, c) = -prior_weight * z(p, c),

  ``z`` the image's standardised (zero mean, unit deviation over its pairs)
  prediction of how much (p, c) moves the margin, from a linear model of the clean image's features around p fitted
  on held-out images' exhaustive corner maps (OPPSLA's synthesised ordering,
  as regression). ``weights``: float[F] in ``corner_prior.FEATURES`` order
  (default: the bundled AllConv prior, ``corner_prior.load()``)."""
  weights: tuple = ()
  prior_weight: float = 0.5  # prior_weight, drop_weight and explore: chosen on 200 validation images
  explore: float = 1.0       # (experiments.fit_corner_prior's), never on test images
  centre_weight: float = 0.0  # the prior has the distance from the centre among its features

  def prior(self, clean) -> jax.Array:
    s = corner_prior.score(clean, self.weights if len(self.weights) else corner_prior.load())
    return -self.prior_weight * (s - s.mean()) / jnp.maximum(s.std(), 1e-12)


def make(config, height: int, width: int) -> Method:
  """The method an ``AttackConfig`` names, for images of ``height x width``."""
  common = dict(pixels=config.pixels, popsize=config.popsize, height=height, width=width)
  name = config.method
  if name == "de":
    return DE(**common, F=config.F, strategy=config.strategy, crossover=config.crossover, dither=config.dither)
  if name == "random":
    return Random(**common)
  if name == "corner":
    return Corner(**common)
  if name == "prioritized_corners":
    return PrioritizedCorners(**common)
  if name == "guided_corners":
    return GuidedCorners(**common)
  if name == "learned_corners":
    return LearnedCorners(**common, weights=corner_prior.load(config.corner_prior))
  if name == "sparse_rs":
    return SparseRS(**common, max_queries=config.max_queries)
  raise ValueError(f"unknown method {name!r}; expected one of {METHODS}")


def query_budget(config, height: int, width: int) -> int:
  """Queries per attack: the config's budget, capped by what the method can make."""
  own = make(config, height, width).budget()
  return config.max_queries if own is None else min(config.max_queries, own)


def num_steps(config, height: int, width: int) -> int:
  """Steps (DE: generations + 1) that an attack's query budget allows."""
  return math.ceil(query_budget(config, height, width) / config.popsize)
