import jax
import jax.numpy as jnp
import numpy as np
import pytest

from onepixel_jax import de


@pytest.mark.parametrize("popsize,n", [(4, 3), (5, 3), (400, 3), (3, 2)])
def test_distinct_indices_are_distinct_and_exclude_self(key, popsize, n):
  for k in jax.random.split(key, 20):
    r = np.asarray(de.distinct_indices(k, popsize, n))
    assert r.shape == (popsize, n)
    full = np.concatenate([np.arange(popsize)[:, None], r], axis=1)
    assert all(len(set(row)) == n + 1 for row in full), "partners must differ from each other and from i"
    assert r.min() >= 0 and r.max() < popsize


def test_distinct_indices_are_uniform(key):
  popsize, trials = 6, 3000
  draws = np.asarray(jax.vmap(lambda k: de.distinct_indices(k, popsize, 3))(jax.random.split(key, trials)))
  # Member 0's partners: each ordered triple of {1..5} equally likely -> each value 1/5 per position.
  for pos in range(3):
    counts = np.bincount(draws[:, 0, pos], minlength=popsize)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / trials, 0.2, atol=0.03)


def test_distinct_indices_rejects_tiny_population(key):
  with pytest.raises(ValueError, match="popsize must be at least 4"):
    de.distinct_indices(key, 3, 3)


def test_rand1_mutation_formula(key):
  pop = jax.random.normal(key, (10, 5))
  k = jax.random.PRNGKey(7)
  r = de.distinct_indices(k, 10, 3)
  expected = pop[r[:, 0]] + 0.5 * (pop[r[:, 1]] - pop[r[:, 2]])
  np.testing.assert_allclose(de.mutate(k, pop, jnp.zeros(10), 0.5, "rand1"), expected, rtol=1e-6)


def test_best1_mutation_uses_best_member(key):
  pop = jax.random.normal(key, (10, 5))
  fit = jnp.arange(10.0).at[7].set(-1.0)
  k = jax.random.PRNGKey(3)
  r = de.distinct_indices(k, 10, 2)
  expected = pop[7][None] + 0.8 * (pop[r[:, 0]] - pop[r[:, 1]])
  np.testing.assert_allclose(de.mutate(k, pop, fit, 0.8, "best1"), expected, rtol=1e-6)


def test_ask_without_crossover_is_pure_mutation(key):
  pop = jax.random.uniform(key, (12, 10), maxval=5.0)
  lo, hi = jnp.zeros(10), jnp.full(10, 5.0)
  k = jax.random.PRNGKey(1)
  children = de.ask(k, pop, jnp.zeros(12), lo, hi)  # paper defaults: rand1, F=0.5, no crossover
  _, k_mut, _ = jax.random.split(k, 3)
  np.testing.assert_allclose(children, jnp.clip(de.mutate(k_mut, pop, None, 0.5), lo, hi), rtol=1e-6)
  assert float(children.min()) >= 0 and float(children.max()) <= 5


def test_binomial_crossover_zero_rate_takes_exactly_one_gene(key):
  parents, mutants = jnp.zeros((50, 8)), jnp.ones((50, 8))
  child = de.binomial_crossover(key, parents, mutants, 0.0)
  np.testing.assert_array_equal(child.sum(axis=1), 1)
  child = de.binomial_crossover(key, parents, mutants, 1.0)
  np.testing.assert_array_equal(child, 1)


def test_dither_draws_F_in_range(key):
  pop = jax.random.normal(key, (8, 4))
  big = jnp.full(4, 1e9)
  for k in jax.random.split(key, 10):
    child = de.ask(k, pop, jnp.zeros(8), -big, big, dither=(0.5, 1.0))
    _, k_mut, _ = jax.random.split(k, 3)
    unit = de.mutate(k_mut, pop, None, 0.0)  # base only
    diff = de.mutate(k_mut, pop, None, 1.0) - unit
    F = np.asarray((child - unit) / diff)
    assert np.allclose(F, F.flat[0], atol=1e-4), "one F per generation"
    assert 0.5 - 1e-4 <= F.flat[0] <= 1.0 + 1e-4


def test_tell_is_greedy_and_strict():
  pop = jnp.array([[0.0], [1.0], [2.0]])
  fit = jnp.array([0.5, 0.5, 0.5])
  kids = jnp.array([[10.0], [11.0], [12.0]])
  new_pop, new_fit = de.tell(pop, fit, kids, jnp.array([0.4, 0.5, 0.6]))
  np.testing.assert_array_equal(new_pop[:, 0], [10.0, 1.0, 2.0])  # ties keep the parent
  np.testing.assert_array_equal(new_fit, np.float32([0.4, 0.5, 0.5]))
