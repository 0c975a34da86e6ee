"""The Model object the attack engine consumes: a module, its weights and a
pure, jittable ``apply(variables, images_uint8) -> probabilities``."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax.models import incremental


@dataclasses.dataclass(frozen=True)
class Model:
  """A trained classifier on raw pixels.

  Attributes:
    name: registry name ("allconv", "nin", "vgg16").
    module: the Flax linen module; ``module.apply(variables, images, train)``
      returns logits.
    variables: ``{'params': ..., 'batch_stats': ...}`` of float32 arrays.
    class_names: label names, index = class id.
    input_size: (H, W) the module expects.
  """
  name: str
  module: nn.Module
  variables: Any
  class_names: tuple[str, ...]
  input_size: tuple[int, int]

  def logits(self, variables, images) -> jnp.ndarray:
    """Pure: uint8[N, H, W, 3] -> float32[N, C] logits (eval mode)."""
    return self.module.apply(variables, images, train=False).astype(jnp.float32)

  def apply(self, variables, images) -> jnp.ndarray:
    """Pure, jittable: uint8[N, H, W, 3] -> float32[N, C] softmax probabilities.

    ``variables`` is an explicit argument so callers that jit this keep the
    weights as inputs rather than baking them into the compiled program.
    """
    return jax.nn.softmax(self.logits(variables, images), axis=-1)

  @functools.cached_property
  def _jit_apply(self):
    return jax.jit(self.apply)

  def predict(self, images) -> jnp.ndarray:
    """uint8[N, H, W, 3] -> float32[N, C] probabilities.

    ``images`` may be NumPy, a JAX array or a tracer: ``predict`` composes
    with ``jax.jit``, ``jax.vmap`` and ``jax.grad`` (float images in [0, 255]
    are preprocessed as uint8 ones are, so gradients w.r.t. pixels exist).
    Compiled once per input shape and dtype; ``self.variables`` are passed as
    arguments, not baked into the program.
    """
    if not isinstance(images, (jax.Array, np.ndarray)):
      images = np.asarray(images)  # lists, lazily decoded ImageNet images
    return self._jit_apply(self.variables, images)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def supports_incremental(self) -> bool:
    """Whether ``apply_incremental`` (sparse incremental inference) is
    available: the CIFAR-10 networks, whose layers :mod:`incremental` describes."""
    return incremental.describe(self.module) is not None

  def apply_incremental(self, variables, clean_images, perturbations) -> jnp.ndarray:
    """Pure, jittable: probabilities of perturbed images given as their changes.

    Args:
      clean_images: uint8[B, H, W, 3].
      perturbations: int32[B, P, k, 5] valid (x, y, r, g, b) tuples.
    Returns:
      float32[B, P, C], equal (to float tolerance) to ``apply`` on the images
      ``perturb.apply(clean_images[:, None], perturbations)``, but each one
      recomputes only the activation windows its changed pixels reach.
    """
    layers = incremental.describe(self.module)
    if layers is None:
      raise NotImplementedError(f"{type(self.module).__name__} has no incremental inference")
    return incremental.apply_incremental(layers, variables, clean_images, perturbations)

  def incremental_kind(self, pixels: int = 1) -> str:
    """The compiler options' kind (``compiler.KINDS``) for ``apply_incremental``
    with ``pixels`` changed pixels (:func:`incremental.compiler_kind`)."""
    layers = incremental.describe(self.module)
    if layers is None:
      raise NotImplementedError(f"{type(self.module).__name__} has no incremental inference")
    return incremental.compiler_kind(layers, pixels, self.input_size)

  # Deprecated names (until the next release).
  @property
  def supports_pixels(self) -> bool:
    """Deprecated: ``supports_incremental``."""
    warnings.warn("Model.supports_pixels is deprecated; use supports_incremental", DeprecationWarning, 2)
    return self.supports_incremental

  def apply_pixels(self, variables, clean_images, pixels) -> jnp.ndarray:
    """Deprecated: ``apply_incremental``."""
    warnings.warn("Model.apply_pixels is deprecated; use apply_incremental", DeprecationWarning, 2)
    return self.apply_incremental(variables, clean_images, pixels)
