"""Shared defaults for the CIFAR-10 training configs: the library's
:func:`onepixel_jax.train.default_config` (one source for them)."""

from onepixel_jax.train import default_config as base_config

__all__ = ["base_config"]
