import os
import pathlib

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


def cifar10_path():
    """The CIFAR-10 tarball: $ONEPIXEL_CIFAR10, else ../shared/data beside the repository."""
    p = os.environ.get("ONEPIXEL_CIFAR10") or str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz")
    return p if os.path.exists(p) else None


@pytest.fixture
def cifar10_tarball():
    p = cifar10_path()
    if p is None:
        pytest.skip("CIFAR-10 tarball not found: set ONEPIXEL_CIFAR10 or place ../shared/data/cifar10-jpeg.tar.gz")
    return p
