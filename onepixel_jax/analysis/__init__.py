"""Analyses beyond the paper, as library code (values in, values out; the
``analysis/`` entry points write the files and ``figures`` draws):

* ``query``: batched class probabilities of many perturbations of many images.
* ``inputs``: a model and the correctly classified images of a seeded draw.
* ``history``: success and best fitness by generation or by queries.
* ``probe``: colour-path and position probes of a perturbation.
* ``corner_search``: exhaustive extreme-colour search, vulnerability maps.
* ``grid_reference``: every position x every colour of a grid, the exhaustive
  one-pixel reference that searches are scored against (recall).
* ``certify``: sound one-pixel certificates, branch and bound over colour
  boxes with back-substituted linear bounds (robust / vulnerable / unknown
  per position).
* ``verify``: per-image verdicts (grid reference, then certificates), their
  summary and an attack's recall against them.
* ``open_questions``: the paper's open questions (population, generations,
  class-pair imbalance).
* ``pixel_subsets``: how many of a k-pixel success's pixels it needs (every
  subset of its pixels, evaluated).
"""

from __future__ import annotations


import dataclasses
from typing import Any


@dataclasses.dataclass
class Outputs:
  """What an analysis found, as values; ``analysis/common.py`` writes them.

  Attributes:
    arrays: ``{file name: {key: array}}``, each written as a compressed ``.npz``.
    json: ``{file name: dict}``, each written as JSON (NaN as null).
    figures: ``{figure name: (kind, data)}``, each written by ``figures.save``
      as ``name.json`` and drawn into ``name.png`` / ``name.pdf``.
  """

  arrays: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  json: dict[str, dict] = dataclasses.field(default_factory=dict)
  figures: dict[str, tuple[str, dict]] = dataclasses.field(default_factory=dict)
