"""Exhaustive corner search and vulnerability maps.

The first stage of CornerSearch (Croce & Hein 2019): try every pixel position
with each of the 8 extreme colours (every channel 0 or 255), 32 x 32 x 8 =
8,192 queries per CIFAR-10 image, all in one batched evaluation. It answers,
for one image, *where* a single pixel changes the label (a vulnerability map:
how many of the 8 colours flip it at each position) and *which* classes a
single pixel can reach. ``compare`` sets it against DE at equal query budgets:
exhaustive search in a random order has an exact expected success rate at
every budget (``random_order_success``), DE's comes from its per-generation
history (``history.success_by_queries``).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from onepixel_jax import methods
from onepixel_jax.analysis import Outputs, grid_reference, history, query

# int32[8, 3]: every colour whose channels are each 0 or 255, in binary order
# (black, blue, green, cyan, red, magenta, yellow, white): the 2-level grid.
CORNER_COLOURS = grid_reference.colour_grid(2)


@dataclasses.dataclass(frozen=True)
class CornerSearch(grid_reference.GridReference):
  """The corner search over N images: the 2-level grid reference
  (:class:`grid_reference.GridReference` with ``colours`` =
  ``CORNER_COLOURS``, non-targeted), read as vulnerability maps.

  ``predicted``: int16[N, H, W, 8] the label with colour c at (row, column);
  ``true_prob``: float32[N, H, W, 8] the true class's probability there;
  ``max_prob``: float32[N, C] each class's highest probability over all corners.
  """

  @property
  def vulnerability(self) -> np.ndarray:
    """int[N, H, W]: how many of the 8 extreme colours change the label at each position."""
    return self.flips.sum(-1)

  @property
  def success(self) -> np.ndarray:
    """bool[N]: some corner changes the label (non-targeted success of the exhaustive search)."""
    return self.vulnerable

  def reachable(self, num_classes: int) -> np.ndarray:
    """bool[N, C]: some corner is classified as class c (c != the true label)."""
    out = np.zeros((len(self.labels), num_classes), bool)
    for c in range(num_classes):
      out[:, c] = (self.predicted == c).any(axis=(1, 2, 3))
    out[np.arange(len(self.labels)), self.labels] = False
    return out


def search(predict, images, labels, batch_size: int | None = None, progress: bool = False,
           incremental: bool = True) -> CornerSearch:
  """Evaluates every position x extreme colour of every image: the 2-level
  :func:`grid_reference.search`, non-targeted.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3]; labels: int[N].
    batch_size, incremental: as :func:`query.probabilities` (incremental
      inference by default where the model has it).
  Returns:
    CornerSearch.
  """
  ref = grid_reference.search(predict, images, labels, None, levels=2, batch_size=batch_size, progress=progress,
                              incremental=incremental)
  return CornerSearch(**{f.name: getattr(ref, f.name) for f in dataclasses.fields(ref)})


def margins(predict, images, labels, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
  """float32[N, H W 8]: the non-targeted margin loss (``methods.margin_loss``,
  negative: misclassified) of every image with each (position, extreme
  colour) pair written in, column ``(y * W + x) * 8 + c`` (``methods.CORNERS``
  order); on the model's incremental path where it has one. What
  ``learned_corners``' prior is fit on (``experiments.fit_corner_prior``)."""
  images = np.asarray(images)
  n, h, w, _ = images.shape
  pert = grid_reference.grid_perturbations(h, w, methods.CORNERS)
  probs = query.probabilities(predict, images, np.broadcast_to(pert, (n,) + pert.shape), batch_size, progress)
  labels = jnp.asarray(labels)[:, None]
  return np.asarray(methods.margin_loss(jnp.asarray(probs), labels, jnp.full_like(labels, -1)), np.float32)


def random_order_success(adversarial_corners, total: int, budgets) -> np.ndarray:
  """Expected success rate of the exhaustive search tried in a uniformly random
  order and stopped after ``q`` queries, for each q in ``budgets``.

  With ``k`` of ``T`` corners adversarial, no hit in q draws without
  replacement has probability C(T - k, q) / C(T, q).

  Args:
    adversarial_corners: int[N] adversarial corners per image.
  Returns:
    float64[len(budgets)].
  """
  k = np.asarray(adversarial_corners, np.int64)
  out = []
  for q in budgets:
    q = int(min(q, total))
    miss = []
    for ki in k:
      if ki == 0:
        miss.append(1.0)
      elif q > total - ki:
        miss.append(0.0)
      else:
        miss.append(math.exp(math.lgamma(total - ki + 1) - math.lgamma(total - ki - q + 1)
                             - math.lgamma(total + 1) + math.lgamma(total - q + 1)))
    out.append(1.0 - float(np.mean(miss)) if len(k) else float("nan"))
  return np.array(out)


def budgets(total: int, points: int = 40) -> np.ndarray:
  """int[~points]: log-spaced query budgets from 1 to ``total``."""
  return np.unique(np.round(np.logspace(0, np.log10(total), points)).astype(int))


def compare(cs: CornerSearch, de_attacks, grid=None) -> dict:
  """Success against queries: exhaustive corner search vs DE (non-targeted).

  Args:
    cs: the corner search of the images; de_attacks: non-targeted attacks
      of the same images (AttackResult or records, ``history`` fields needed).
    grid: query budgets (default ``budgets(cs.queries)``).
  Returns:
    dict with ``budgets``, ``corner_random_order`` (expected success),
    ``corner_exhaustive`` (success after all corners), ``de`` (success by
    query budget; NaN beyond DE's configured budget), ``de_max_queries``.
  """
  grid = budgets(cs.queries) if grid is None else np.asarray(grid)
  k = cs.flips.sum(axis=(1, 2, 3))
  de_attacks = history.as_result(de_attacks)
  de = history.success_by_queries(de_attacks, grid)
  # The histories span each attack's whole configured budget (P * (G + 1)).
  de_budget = int(de_attacks.popsize.max() * de_attacks.predicted_history.shape[1]) if len(de_attacks) else 0
  de = np.where(grid <= de_budget, de, np.nan)
  return {
      "budgets": grid.tolist(),
      "corner_random_order": random_order_success(k, cs.queries, grid).tolist(),
      "corner_exhaustive": float(cs.success.mean()),
      "de": [None if not np.isfinite(v) else float(v) for v in de],
      "de_max_queries": int(de_budget),
  }


def de_landing(cs: CornerSearch, records, index_of_id: dict[int, int]) -> dict:
  """Where DE's successful pixels land on the vulnerability maps.

  Returns:
    dict with ``count`` (successful DE records on the searched images),
    ``on_vulnerable`` (share whose position has at least one flipping corner),
    ``base_rate`` (share of all positions of those images that are vulnerable),
    ``mean_vulnerability_at_de`` / ``mean_vulnerability`` (flipping corners per
    position, at DE's positions / everywhere), ``channels_at_extreme`` (share
    of DE's colour channels exactly 0 or 255), and ``points`` [[image index,
    x, y], ...].
  """
  vul = cs.vulnerability
  hits, base, at, everywhere, extreme, points = [], [], [], [], [], []
  for r in records:
    if not r["success"] or r["id"] not in index_of_id:
      continue
    i = index_of_id[r["id"]]
    for x, y, *rgb in r["perturbation"]:
      hits.append(vul[i, y, x] > 0)
      at.append(vul[i, y, x])
      base.append((vul[i] > 0).mean())
      everywhere.append(vul[i].mean())
      extreme += [v in (0, 255) for v in rgb]
      points.append([i, int(x), int(y)])
  mean = lambda a: float(np.mean(a)) if len(a) else None  # noqa: E731
  return {"count": len(points), "on_vulnerable": mean(hits), "base_rate": mean(base),
          "mean_vulnerability_at_de": mean(at), "mean_vulnerability": mean(everywhere),
          "channels_at_extreme": mean(extreme), "points": points}


def pair_reachability(cs: CornerSearch, num_classes: int) -> dict:
  """Per (original, target) class pair: images searched and the share from
  which the target is reachable by one extreme pixel.

  Returns:
    dict with ``images`` int[C] per original class and ``reachable``
    float[C, C] (NaN for classes without images).
  """
  reach = cs.reachable(num_classes)
  counts = np.bincount(cs.labels, minlength=num_classes)
  rate = np.full((num_classes, num_classes), np.nan)
  for a in range(num_classes):
    if counts[a]:
      rate[a] = reach[cs.labels == a].mean(0)
      rate[a, a] = np.nan
  return {"images": counts.tolist(), "reachable": rate}


# --------------------------------------------------------------------------
# The outputs: the numbers and the figures' data.
# --------------------------------------------------------------------------


def outputs(cs: CornerSearch, images, ids, class_names, de_records=(), de_label: str = "DE",
            landing_records=None, max_maps: int = 12, meta: dict | None = None, note: str = "") -> Outputs:
  """``corners.npz`` (``load`` reads it back), ``corner_summary.json`` and the
  figures ``vulnerability_maps``, ``corner_vs_de``, ``corner_pairs``.

  ``de_records``: non-targeted DE records of the same images (the query-budget
  comparison); ``landing_records``: the records whose successful pixels are
  marked on the maps (default ``de_records``)."""
  ids = np.asarray(ids)
  c = len(class_names)
  out = Outputs()
  out.arrays["corners.npz"] = dict(predicted=cs.predicted, true_prob=cs.true_prob.astype(np.float16),
                                   max_prob=cs.max_prob, labels=cs.labels, ids=ids, colours=CORNER_COLOURS)
  index_of_id = {int(i): k for k, i in enumerate(ids)}
  de_records = list(de_records)
  vul = cs.vulnerability
  cmp = compare(cs, de_records) if de_records else None
  land = de_landing(cs, de_records if landing_records is None else landing_records, index_of_id)
  reach = pair_reachability(cs, c)
  k = cs.flips.sum(axis=(1, 2, 3))
  h, w = vul.shape[1:]
  border = np.zeros((h, w), bool)
  border[[0, -1], :] = border[:, [0, -1]] = True
  per_image = [{"id": int(ids[i]), "label": int(cs.labels[i]), "adversarial_corners": int(k[i]),
                "vulnerable_positions": int((vul[i] > 0).sum()), "min_true_prob": float(cs.true_prob[i].min()),
                "reachable": [class_names[j] for j in np.flatnonzero(cs.reachable(c)[i])]}
               for i in range(len(ids))]
  de_final = None
  if de_records:
    de_final = float(np.mean([r["success"] for r in de_records]))
  de_q = cmp["de_max_queries"] if cmp else None
  summary = {
      **(meta or {}), "note": note, "queries_per_image": cs.queries,
      "corner_success": float(cs.success.mean()),
      "corner_success_random_order_at_de_budget": (float(random_order_success(k, cs.queries, [de_q])[0])
                                                   if de_q else None),
      "de_success": de_final, "de_max_queries": de_q,
      "de_mean_queries": float(np.mean([r["queries"] for r in de_records])) if de_records else None,
      "mean_adversarial_corners": float(k.mean()),
      "mean_vulnerable_position_share": float((vul > 0).mean()),
      "vulnerable_share_border": float((vul[:, border] > 0).mean()),
      "vulnerable_share_interior": float((vul[:, ~border] > 0).mean()),
      "adversarial_share_by_colour": {name: float(cs.flips[..., j].mean()) for j, name in enumerate(
          ("black", "blue", "green", "cyan", "red", "magenta", "yellow", "white"))},
      "de_landing": land, "comparison": cmp, "pair_reachability": reach, "images": per_image,
  }
  out.json["corner_summary.json"] = summary

  show = np.argsort(-k, kind="stable")[:max_maps]  # the most vulnerable images first
  slot = {int(i): j for j, i in enumerate(show)}
  titles = [f"id {ids[i]} {class_names[cs.labels[i]]}\n{k[i]} corners flip" for i in show]
  out.figures["vulnerability_maps"] = ("vulnerability_maps", {
      "maps": vul[show], "images": np.asarray(images)[show], "titles": titles,
      "de_points": [[slot[q[0]], q[1], q[2]] for q in land["points"] if q[0] in slot],
      "mean_map": cs.flips.mean(axis=(0, 3)), "note": note})
  if cmp:
    out.figures["corner_vs_de"] = ("corner_vs_de", {**cmp, "de_label": de_label, "note": note})
  out.figures["corner_pairs"] = ("pair_matrix", {
      "matrix": reach["reachable"], "class_names": class_names, "note": note,
      "title": "share of images from which one extreme pixel reaches the class"})
  return out


def load(path) -> tuple[CornerSearch, np.ndarray]:
  """A saved search (``corners.npz`` of ``outputs``) and its image ids."""
  with np.load(path) as z:
    labels = z["labels"].astype(np.int64)
    return CornerSearch(predicted=z["predicted"], true_prob=z["true_prob"].astype(np.float32),
                        target_prob=np.full(z["predicted"].shape, np.nan, np.float32), labels=labels,
                        targets=np.full(len(labels), -1, np.int64), colours=z["colours"],
                        max_prob=z["max_prob"]), z["ids"]
