"""Paths the tests share (fixtures are in conftest.py)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cifar10_path():
  """The CIFAR-10 tarball: $ONEPIXEL_CIFAR10, else ../shared/data beside the repository; None if absent."""
  p = os.environ.get("ONEPIXEL_CIFAR10") or str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz")
  return p if os.path.exists(p) else None


def run_module(module: str, *args, timeout: int = 300, env=None) -> subprocess.CompletedProcess:
  """``python -m module args...`` from the repository root, output captured."""
  return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env=env)


def run_on_host_devices(script: str, devices: int = 4, timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs a Python ``script`` (source text) from the repository root with
  ``devices`` simulated CPU devices (XLA's host platform device count; the
  suite's other ``XLA_FLAGS`` kept)."""
  flags = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)
