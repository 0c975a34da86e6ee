"""The package: public names, no import cycle, old module paths that still work."""

import ast
import pathlib
import warnings

import pytest

import onepixel_jax as op

PACKAGE = pathlib.Path(op.__file__).parent


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """The package modules a module imports, at load time or later (in functions).

  ``from pkg import name`` counts as importing ``pkg.name`` when that is a module,
  else ``pkg``; a module's own ancestor packages are left out (they are already
  being initialised when it runs, e.g. ``from onepixel_jax import de`` in attack)."""
  name = _module_name(path)
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
      subs = {f"{base}.{a.name}" for a in node.names} & modules
      out |= subs if subs else {base}
  return {m for m in out if m in modules and m != name and not name.startswith(m + ".")}


def test_no_import_cycle():
  files = [p for p in PACKAGE.rglob("*.py")]
  modules = {_module_name(p) for p in files}
  graph = {_module_name(p): _imports(p, modules) for p in files}
  # A submodule's import also runs its package's __init__: edges to the parents too.
  for m in list(graph):
    graph[m] |= {p for d in graph[m] for p in [".".join(d.split(".")[:i]) for i in range(2, d.count(".") + 1)]
                 if p in modules and p != m and not m.startswith(p + ".")}
  assert graph["onepixel_jax.data.cifar10"] >= {"onepixel_jax.data.samples"}  # the graph sees real imports

  def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
      node, path = stack.pop()
      for nxt in graph[node]:
        if nxt == start:
          return path + [nxt]
        if nxt not in seen:
          seen.add(nxt)
          stack.append((nxt, path + [nxt]))
    return None

  cycles = [c for c in (cycle_from(m) for m in sorted(graph)) if c]
  assert not cycles, " -> ".join(cycles[0])


@pytest.mark.parametrize("old,new", sorted(op.MOVED.items()))
def test_old_module_paths_warn_and_give_the_new_module(old, new):
  import importlib
  import sys
  sys.modules.pop(f"onepixel_jax.{old}", None)
  with pytest.warns(DeprecationWarning, match=f"onepixel_jax.{old} moved to {new}"):
    mod = importlib.import_module(f"onepixel_jax.{old}")
  assert mod is importlib.import_module(new)


def test_public_names():
  assert set(op.__all__) >= {"attack", "attack_iter", "AttackConfig", "AttackResult", "models", "data"}
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # the current names do not warn
    assert op.models.load is not None and op.data.load is not None and op.AttackResult is op.results.AttackResult
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    op.nope  # noqa: B018


def test_the_installable_package_ships_every_module_and_data_file():
  """pyproject.toml's package finder reaches every module (each folder with
  Python files is a package), its package-data patterns cover every other
  file the library reads (checkpoints, their metadata, the corner prior),
  and the version and dependencies each have one source."""
  import fnmatch
  import tomllib

  cfg = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
  patterns = cfg["package-data"]["onepixel_jax"]
  files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
  data = [p.relative_to(PACKAGE).as_posix() for p in files if p.suffix not in (".py", ".pyc")]
  assert "weights/allconv.msgpack" in data and "weights/corner_prior_allconv.json" in data
  assert [f for f in data if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []
  assert cfg["packages"]["find"]["include"] == ["onepixel_jax*"]
  assert [str(p) for p in files if p.suffix == ".py" and not (p.parent / "__init__.py").exists()] == []
  assert cfg["dynamic"] == {"version": {"attr": "onepixel_jax.__version__"},
                            "dependencies": {"file": ["requirements.txt"]}}
  assert op.__version__.count(".") == 2
