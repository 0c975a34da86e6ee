"""Differential evolution (DE) as pure, jittable functions.

The paper (Su, Vargas, Sakurai, Sec. III-C) uses DE/rand/1 with scale
F = 0.5 and *no crossover*: every member ``i`` of a generation proposes one
child ``x_r1 + F * (x_r2 - x_r3)`` with ``r1, r2, r3`` distinct and different
from ``i``, and the child replaces its parent only if it is fitter. The
options that users of SciPy's DE expect (DE/best/1, binomial crossover, F
dithering) are provided too, but are off by default.

Everything here works on one population ``float32[P, D]`` and is written for
``jax.vmap`` over many populations; randomness comes only from explicit keys.
Fitness is *minimised*.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

STRATEGIES = ("rand1", "best1")


def distinct_indices(key: jax.Array, popsize: int, n: int) -> jax.Array:
  """Draws, for every member ``i``, ``n`` indices distinct from each other and from ``i``.

  Each row is a uniformly random ordered ``n``-subset of ``{0..P-1} \\ {i}``.

  Returns:
    int32[popsize, n].
  """
  if popsize < n + 1:
    raise ValueError(f"popsize must be at least {n + 1} to draw {n} distinct partners, got {popsize}")
  excluded = jnp.arange(popsize, dtype=jnp.int32)[:, None]
  chosen = []
  for j, k in enumerate(jax.random.split(key, n)):
    # Draw the v-th element of the complement of `excluded`: walking the
    # excluded values in ascending order, each one at or below v shifts v up.
    v = jax.random.randint(k, (popsize,), 0, popsize - 1 - j, dtype=jnp.int32)
    ordered = jnp.sort(excluded, axis=1)
    for col in range(ordered.shape[1]):
      v = v + (v >= ordered[:, col])
    chosen.append(v)
    excluded = jnp.concatenate([excluded, v[:, None]], axis=1)
  return jnp.stack(chosen, axis=1)


def mutate(
    key: jax.Array,
    population: jax.Array,
    fitness: jax.Array,
    F: jax.Array | float,
    strategy: str = "rand1",
) -> jax.Array:
  """Mutant vectors for every member.

  Args:
    population: float32[P, D].
    fitness: float32[P] (minimised; used by ``best1``).
    F: the differential weight (paper: 0.5), scalar.
    strategy: ``"rand1"`` (paper) ``x_r1 + F (x_r2 - x_r3)`` or
      ``"best1"`` ``x_best + F (x_r1 - x_r2)``.
  Returns:
    float32[P, D].
  """
  popsize = population.shape[0]
  if strategy == "rand1":
    r = distinct_indices(key, popsize, 3)
    base = population[r[:, 0]]
    diff = population[r[:, 1]] - population[r[:, 2]]
  elif strategy == "best1":
    r = distinct_indices(key, popsize, 2)
    base = population[jnp.argmin(fitness)][None, :]
    diff = population[r[:, 0]] - population[r[:, 1]]
  else:
    raise ValueError(f"unknown DE strategy {strategy!r}; expected one of {STRATEGIES}")
  return base + F * diff


def binomial_crossover(key: jax.Array, parents: jax.Array, mutants: jax.Array, rate: float) -> jax.Array:
  """SciPy-style binomial crossover: each gene comes from the mutant with
  probability ``rate``; one random gene per member always does."""
  k_mask, k_forced = jax.random.split(key)
  popsize, dim = parents.shape
  take = jax.random.uniform(k_mask, (popsize, dim)) < rate
  forced = jax.random.randint(k_forced, (popsize,), 0, dim)
  take = take | (jnp.arange(dim)[None, :] == forced[:, None])
  return jnp.where(take, mutants, parents)


def ask(
    key: jax.Array,
    population: jax.Array,
    fitness: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    *,
    F: float = 0.5,
    strategy: str = "rand1",
    crossover: float | None = None,
    dither: tuple[float, float] | None = None,
) -> jax.Array:
  """One child per member: mutation, optional crossover, then clipping into the box.

  Args:
    population: float32[P, D]; fitness: float32[P].
    lower, upper: float32[D], the search box (children are clipped into it).
    F: differential weight (paper: 0.5). With ``dither=(lo, hi)`` F is drawn
      from U(lo, hi) once per generation instead (SciPy's ``mutation=(lo, hi)``).
    crossover: None for the paper's no-crossover DE, else the binomial rate.
  Returns:
    float32[P, D] children.
  """
  k_f, k_mut, k_cr = jax.random.split(key, 3)
  if dither is not None:
    F = jax.random.uniform(k_f, (), minval=dither[0], maxval=dither[1])
  children = mutate(k_mut, population, fitness, F, strategy)
  if crossover is not None:
    children = binomial_crossover(k_cr, population, children, crossover)
  return jnp.clip(children, lower, upper)


def tell(population: jax.Array, fitness: jax.Array, children: jax.Array, child_fitness: jax.Array):
  """Greedy one-to-one selection: a child replaces its parent only if strictly fitter.

  Returns:
    (population float32[P, D], fitness float32[P]).
  """
  better = child_fitness < fitness
  return jnp.where(better[:, None], children, population), jnp.where(better, child_fitness, fitness)
