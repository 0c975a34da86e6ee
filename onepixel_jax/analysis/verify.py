"""How vulnerable is each image, really? Per-image one-pixel verdicts (issue 14).

For each image: the exhaustive grid reference (:mod:`grid_reference`, every
position x every colour of a grid) first, its succeeding colours seeding the
certifier (:mod:`certify`), which then decides every position by branch and
bound over colour boxes: robust (no colour of [0, 255]^3 succeeds there),
vulnerable (a colour confirmed by the model) or unknown (budget). The image's
verdict is "vulnerable" if any pixel is known to succeed, "robust" if every
position is certified, else "unknown". Records are plain dicts (one JSONL
line each, :func:`record`); :func:`summary` scores them, and an attack's
records against them (recall of DE etc.).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from onepixel_jax.analysis import certify, grid_reference

# A box bound costs about certify.box_macs(net) multiply-adds; above this the
# certifier is skipped (AllConv: ~1e13, hours per position on 2 CPU cores) and
# only the grid reference's positions are decided (vulnerable), the rest unknown.
MAX_BOX_MACS = 1e9


def seeds_from_grid(ref: grid_reference.GridReference, i: int = 0) -> np.ndarray:
  """int[H, W, 3]: per position the grid colour that succeeds best (lowest
  true-class probability, targeted: highest target probability), -1 where none."""
  flips = ref.flips[i]
  score = ref.true_prob[i] if ref.targets[i] < 0 else -ref.target_prob[i]
  best = np.where(flips, score, np.inf).argmin(-1)
  out = ref.colours[best].astype(np.int32)
  out[~flips.any(-1)] = -1
  return out


def record(model, net: certify.Network | None, image, label: int, index: int, target: int = -1, levels: int = 3,
           max_seconds: float | None = None, max_boxes: int = 1_000_000, batch: int = 512) -> dict:
  """The verdict on one image (a JSON-ready dict).

  Args:
    model: the loaded model (its ``predict`` confirms colours and runs the grid).
    net: ``certify.from_model(model)``, or None where the certifier has no
      relaxation for the network (max pooling: NiN, VGG16): the grid
      reference alone decides, its positions vulnerable, the rest unknown.
    image: uint8[H, W, 3]; label: its class; index: its position in the
      array the data loader returns (the record's ``index``).
    target: -1 non-targeted, else the class to reach.
    levels: the grid's values per channel.
    max_seconds, max_boxes: the certifier's budget for the image.
  Returns:
    ``index, label, target, verdict, pixel ([x, y, r, g, b] or None),
    grid_vulnerable, grid_pixel, certified, vulnerable, unknown (position
    counts), boxes, exhausted, certifier, seconds, grid_seconds, map`` (the
    per-position status as H*W digits, row-major: 0 unknown, 1 robust,
    2 vulnerable).
  """
  t0 = time.time()
  image = np.asarray(image, np.uint8)
  targets = None if target < 0 else np.array([target])
  ref = grid_reference.search(model, image[None], np.array([label]), targets, levels=levels)
  grid_seconds = time.time() - t0
  seeds = seeds_from_grid(ref)
  note = "branch and bound"
  if net is None:
    note = "skipped: no relaxation for the network's max pooling"
  elif certify.box_macs(net) > MAX_BOX_MACS:
    max_boxes = 0
    note = f"skipped: a box costs {certify.box_macs(net):.1e} multiply-adds (> {MAX_BOX_MACS:.0e})"
  cert = certify.certify(net, model.predict, image, label, target, seeds=seeds, max_boxes=max_boxes,
                         max_seconds=max_seconds, batch=batch)
  counts = cert.counts
  gp = ref.best_pixel[0]
  return {
      "index": int(index), "label": int(label), "target": None if target < 0 else int(target),
      "verdict": cert.verdict, "pixel": cert.pixel,
      "grid_vulnerable": bool(ref.vulnerable[0]), "grid_pixel": gp.tolist() if ref.vulnerable[0] else None,
      "certified": counts["robust"], "vulnerable": counts["vulnerable"], "unknown": counts["unknown"],
      "boxes": int(cert.boxes.sum()), "exhausted": bool(cert.exhausted), "certifier": note,
      "seconds": round(time.time() - t0, 3), "grid_seconds": round(grid_seconds, 3),
      "map": "".join(map(str, cert.status.ravel().tolist())),
  }


def status_map(rec: dict, hw=(32, 32)) -> np.ndarray:
  """int8[H, W] the per-position status of a record."""
  return np.frombuffer(rec["map"].encode(), np.uint8).reshape(hw).astype(np.int8) - ord("0")


def summary(records: list[dict], attacks: list[dict] | None = None) -> dict:
  """Counts, times and (with an attack's records of the same images, matched
  by ``id`` = ``index`` and target) the attack's recall.

  ``de_recall_grid``: share of grid-vulnerable images the attack fooled (the
  grid reference's recall, as :func:`grid_reference.recall`);
  ``de_recall_known``: share of images known vulnerable it fooled;
  ``de_fooled_certified``: images certified robust that it fooled (must be 0).
  """
  n = len(records)
  verdicts = [r["verdict"] for r in records]
  secs = np.array([r["seconds"] for r in records], float)
  out = {
      "images": n,
      "robust": verdicts.count("robust"), "vulnerable": verdicts.count("vulnerable"),
      "unknown": verdicts.count("unknown"),
      "definite_share": (n - verdicts.count("unknown")) / n if n else float("nan"),
      "grid_vulnerable": sum(r["grid_vulnerable"] for r in records),
      "positions": {k: int(sum(r[k] for r in records)) for k in ("certified", "vulnerable", "unknown")},
      "seconds_median": float(np.median(secs)) if n else float("nan"),
      "seconds_mean": float(secs.mean()) if n else float("nan"),
      "seconds_max": float(secs.max()) if n else float("nan"),
  }
  vul = [r for r in records if r["verdict"] == "vulnerable"]
  out["grid_recall_known"] = (sum(r["grid_vulnerable"] for r in vul) / len(vul)) if vul else float("nan")
  if attacks:
    by_key = {(a["id"], a.get("target")): a for a in attacks}
    matched = [(r, by_key[(r["index"], r["target"])]) for r in records if (r["index"], r["target"]) in by_key]
    out["attacks_matched"] = len(matched)
    share = lambda rs: (sum(a["success"] for _, a in rs) / len(rs)) if rs else float("nan")  # noqa: E731
    out["de_recall_grid"] = share([m for m in matched if m[0]["grid_vulnerable"]])
    out["de_recall_known"] = share([m for m in matched if m[0]["verdict"] == "vulnerable"])
    out["de_fooled"] = sum(a["success"] for _, a in matched)
    out["de_fooled_certified"] = sum(a["success"] for r, a in matched if r["verdict"] == "robust")
    out["de_fooled_grid_missed"] = sum(a["success"] for r, a in matched if not r["grid_vulnerable"])
  return out


def figure_data(records: list[dict], images, class_names, hw=(32, 32), max_images: int = 24,
                total: int | None = None) -> dict:
  """The ``verify_maps`` figure's data: per image its picture and status map
  (``images``: the records' images, in order; None: maps only)."""
  recs = records[:max_images]
  names = lambda c: class_names[c] if c is not None else "-"  # noqa: E731
  return {
      "maps": [status_map(r, hw) for r in recs],
      "images": None if images is None else [np.asarray(im) for im in images[:max_images]],
      "titles": [f"#{r['index']} {names(r['label'])}" + (f"->{names(r['target'])}" if r["target"] is not None else "")
                 + f"\n{r['verdict']} ({r['certified']}/{r['vulnerable']}/{r['unknown']})" for r in recs],
      "pixels": [r["pixel"] for r in recs],
      "title": f"one-pixel verdicts per position ({len(recs)} of {total or len(records)} images)",
  }


def backsub_layers(net: certify.Network, backsub_limit: float | None) -> list[int]:
  """The hidden layers whose bounds :func:`certify.linear_bounds` back-substitutes under ``backsub_limit``."""
  n = certify.cone_sizes(net)
  sizes = [3 * n[0]] + [a * b for a, b in zip(n[1:], n)]  # the cone matrices' sizes
  return [k for k in range(1, len(n) - 1) if backsub_limit is None or 2 * n[k] * sum(sizes[:k]) <= backsub_limit]


@functools.partial(jax.jit, static_argnames=("layers", "backsub_limit"))
def _report_one(layers, params, image, label, pos, lo, hi, backsub_limit):
  acts = certify.clean_activations(certify.Network(layers, params, tuple(image.shape[:2])), image)
  cone = certify.cone(layers, params, acts, image, pos)
  rows, valid = certify.margin_rows(label, -1, layers[-1].out_shape[-1])
  ibp = certify.interval_bounds(layers, cone, lo, hi)
  hidden = certify.linear_bounds(layers[:-1], (cone[0][:-1], cone[1][:-1]), lo, hi, backsub_limit)
  low, _ = certify.margin_bounds(layers, cone, lo, hi, rows, backsub_limit)
  zl, zu = ibp[-1]
  unstable = lambda bounds: jnp.stack([jnp.sum((l < 0) & (u > 0)) for l, u in bounds])  # noqa: E731
  margin = rows @ certify.forward(layers, cone, (lo + hi) / 2)[-1]
  return (jnp.min(jnp.where(valid, low, jnp.inf)), jnp.min(jnp.where(valid, zl[label] - zu, jnp.inf)),
          jnp.min(jnp.where(valid, margin, jnp.inf)), unstable(hidden), unstable(ibp[:-1]))


def bound_report(net: certify.Network, image, label: int, positions, radii=(0, 2, 16, 255),
                 backsub_limit: float | None = 3e9) -> list[dict]:
  """How loose the bounds are, where certification is out of reach (AllConv).

  For each position (row, column) and radius ``r``, the box of colours within
  ``r`` of the clean colour per channel (clipped to [0, 255]; 255: every
  colour): the worst margin's lower bound by intervals (IBP) and by
  back-substitution (intermediate layers as ``backsub_limit`` allows, see
  :func:`certify.linear_bounds`), the true worst margin at the box's centre
  (an upper bound on the box's minimum), and the unstable ReLUs per hidden
  layer under each. Returns one dict per (position, radius).
  """
  image = np.asarray(image, np.uint8)
  out = []
  for y, x in positions:
    c = image[y, x].astype(np.float32)
    for r in radii:
      lo, hi = np.clip(c - r, 0, 255), np.clip(c + r, 0, 255)
      t0 = time.time()
      low, ibp, centre, unst, unst_ibp = jax.device_get(_report_one(
          net.layers, net.params, jnp.asarray(image), int(label), jnp.asarray([y, x], jnp.int32),
          jnp.asarray(lo), jnp.asarray(hi), backsub_limit))
      out.append({"position": [int(x), int(y)], "radius": int(r), "lo": lo.astype(int).tolist(),
                  "hi": hi.astype(int).tolist(), "margin_lower_backsub": float(low), "margin_lower_ibp": float(ibp),
                  "margin_at_centre": float(centre), "unstable_backsub": unst.tolist(),
                  "unstable_ibp": unst_ibp.tolist(), "seconds": round(time.time() - t0, 2)})
  return out
