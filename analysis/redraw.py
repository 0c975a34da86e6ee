r"""Redraws analysis figures from their JSON, without rerunning anything.

    python -m analysis.redraw runs/analysis/probe/probe_curves.json [more.json ...]
"""

import sys

from absl import app

from onepixel_jax import figures


def main(argv):
  if len(argv) < 2:
    sys.exit("analysis.redraw: error: give one or more figure .json files")
  for path in argv[1:]:
    try:
      print("\n".join(figures.redraw(path)))
    except (ValueError, OSError, KeyError) as e:
      sys.exit(f"analysis.redraw: error: {path}: {e}".splitlines()[0])


if __name__ == "__main__":
  app.run(main)
