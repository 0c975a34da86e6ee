r"""Redraws figures from their JSON, without rerunning anything: the analyses'
and the paper's (``experiments.reproduce_paper``'s OUT/figures); the one
redraw entry point.

    python -m analysis.redraw runs/analysis/probe/probe_curves.json [more.json ...]
    python -m analysis.redraw runs/paper_cpu/figures          # every figure in a folder
"""

import sys

from absl import app

from onepixel_jax import figures


def main(argv):
  if len(argv) < 2:
    sys.exit("analysis.redraw: error: give one or more figure .json files or folders")
  for path in argv[1:]:
    try:
      print("\n".join(figures.redraw(path)))
    except (ValueError, OSError, KeyError) as e:
      sys.exit(f"analysis.redraw: error: {path}: {e}".splitlines()[0])


if __name__ == "__main__":
  app.run(main)
