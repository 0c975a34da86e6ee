"""Boundary probing: step a perturbed point and log every class probability.

The paper (Su, Vargas, Sakurai 2019, Sec. V) explains the class-pair imbalance
by geometry: an image near a long, thin decision boundary is easy to move
*from*, one far from a wide boundary hard. Probing makes that measurable. For
an image and a perturbation (e.g. an attack's best candidate):

* colour path: the changed pixels' colours step from their original values
  (``t = 0``, the clean image) to the adversarial ones (``t = 1``) and on
  along the same direction (``t > 1``, "beyond", clipped to [0, 255]);
* position: the adversarial colours are written at the pixels' positions
  shifted by every ``(dx, dy)`` with ``|dx|, |dy| <= radius`` (the original
  pixels stay clean).

All probes of all perturbations are evaluated in one batched call
(``query.probabilities``). From the curves: where the label flips (``flip_t``,
and in colour units ``flip_distance``), how wide the transition is
(``width_t``: the distance from 10% to 90% of the two-class share
``p_adv / (p_adv + p_true)``), and how far the adversarial region extends
around the pixel (``neighbour_share``). ``by_pair`` aggregates per
(original, adversarial) class pair.

A perturbation need not fool the model: probing the best candidate of an
attack that failed measures how far from the boundary DE stopped
(``margin``: the true class's lead over the runner-up at t = 1, and whether
the label flips further along the path). ``select`` picks, from attack
records, every success and, for each image no attack fooled, its best
candidate; ``Probes.success`` says which is which.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from onepixel_jax.analysis import Outputs, query


def select(records, best_candidates: bool = True) -> list[dict]:
  """The records to probe: every successful attack (one per distinct image and
  perturbation) and, if ``best_candidates``, for each image that no attack
  fooled, its best candidate (the record with the lowest true-class probability)."""
  chosen, seen, best = [], set(), {}
  for r in records:
    if r["success"]:
      key = (r["id"], str(r["perturbation"]))
      if key not in seen:
        seen.add(key)
        chosen.append(r)
    elif r["id"] not in best or r["true_prob"] < best[r["id"]]["true_prob"]:
      best[r["id"]] = r
  if not best_candidates:
    return chosen
  fooled = {r["id"] for r in chosen}
  return chosen + [r for i, r in best.items() if i not in fooled]


def colour_path(original, adversarial, steps: int = 20, beyond: float = 0.5):
  """The colour path from the original to the adversarial colours and beyond.

  Args:
    original, adversarial: int[..., 3] colours (or int[..., k, 3] for k pixels).
    steps: steps from t = 0 to t = 1 (so ``steps + 1`` points on [0, 1]).
    beyond: how far past the adversarial colour to continue, in units of the
      original-to-adversarial distance (same step size); 0 ends at t = 1.
  Returns:
    ``t``: float64[S] with ``t[0] = 0``, ``t[steps] = 1``, ``S = steps + 1 +
    round(beyond * steps)``; ``colours``: int32[..., S, 3] (path axis before
    the channel axis, or before the pixel axis for k pixels: ``[..., S, k, 3]``
    when the inputs are ``[..., k, 3]``) rounded and clipped to [0, 255]; the
    t = 0 colours are exactly ``original`` and the t = 1 colours exactly
    ``adversarial``.
  """
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  if beyond < 0:
    raise ValueError(f"beyond must be >= 0, got {beyond}")
  t = np.concatenate([np.linspace(0.0, 1.0, steps + 1), 1.0 + np.arange(1, int(round(beyond * steps)) + 1) / steps])
  o = np.asarray(original, np.float64)
  a = np.asarray(adversarial, np.float64)
  if o.shape != a.shape or o.shape[-1] != 3:
    raise ValueError(f"original and adversarial colours must have the same shape [..., 3], got {o.shape}, {a.shape}")
  lead = o.shape[:-2] if o.ndim >= 2 else ()
  o2 = o.reshape(lead + (1, -1, 3)) if o.ndim >= 2 else o.reshape(1, 1, 3)
  a2 = a.reshape(o2.shape)
  tt = t.reshape((1,) * len(lead) + (-1, 1, 1))
  colours = np.clip(np.round(o2 + tt * (a2 - o2)), 0, 255).astype(np.int32)  # [..., S, k, 3]
  if o.ndim == 1:
    colours = colours[:, 0]  # [S, 3]
  return t, colours


def position_offsets(radius: int = 2) -> np.ndarray:
  """int32[(2r+1)^2, 2] every (dx, dy) with |dx|, |dy| <= radius, row-major, (0, 0) included."""
  r = np.arange(-radius, radius + 1)
  dy, dx = np.meshgrid(r, r, indexing="ij")
  return np.stack([dx.ravel(), dy.ravel()], axis=1).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Probes:
  """Probes of N perturbations of k pixels each, C classes.

  Attributes:
    t: float64[S] colour-path parameter (0 clean, 1 adversarial, > 1 beyond).
    adversarial_step: the index of t = 1.
    colour_pixels: int32[N, S, k, 5] what was written at each step.
    colour_probs: float32[N, S, C] every class's probability at every step.
    offsets: int32[M, 2] the (dx, dy) position shifts.
    position_valid: bool[N, M] the shift keeps every pixel inside the image.
    position_probs: float32[N, M, C] (NaN where invalid).
    labels: int[N] clean labels; adv_labels: int[N] the label at t = 1.
    success: bool[N] the perturbation fools the model (``adv_labels !=
      labels``); False: a best candidate that did not.
    perturbations: int[N, k, 5] the probed perturbations.
    original_colours: int32[N, k, 3] the clean colours at the perturbed pixels.
  """

  t: np.ndarray
  adversarial_step: int
  colour_pixels: np.ndarray
  colour_probs: np.ndarray
  offsets: np.ndarray
  position_valid: np.ndarray
  position_probs: np.ndarray
  labels: np.ndarray
  adv_labels: np.ndarray
  perturbations: np.ndarray
  original_colours: np.ndarray

  def __len__(self):
    return len(self.labels)

  @property
  def success(self) -> np.ndarray:
    return self.adv_labels != self.labels

  @property
  def colour_distance(self) -> np.ndarray:
    """float64[N] Euclidean RGB distance (over all k pixels) from original to adversarial colours."""
    d = self.perturbations[:, :, 2:5].astype(np.float64) - self.original_colours
    return np.sqrt((d ** 2).sum(axis=(1, 2)))


def probe_pixels(images, perturbations, steps: int = 20, beyond: float = 0.5, radius: int = 2):
  """The probe perturbations, without evaluating them.

  Args:
    images: uint8[N, H, W, 3] clean images; perturbations: int[N, k, 5].
  Returns:
    ``(t, colour_pixels int32[N, S, k, 5], offsets int32[M, 2],
    position_pixels int32[N, M, k, 5], position_valid bool[N, M],
    original_colours int32[N, k, 3])``. Colour step 0 writes the original
    colours (the clean image), step ``steps`` the adversarial ones.
  """
  images = np.asarray(images)
  pert = np.asarray(perturbations, np.int32)
  if pert.ndim != 3 or pert.shape[-1] != 5 or pert.shape[0] != images.shape[0]:
    raise ValueError(f"perturbations must be int[N, k, 5] for {images.shape[0]} images, got shape {pert.shape}")
  n, k, _ = pert.shape
  h, w = images.shape[1:3]
  xs, ys = pert[..., 0], pert[..., 1]
  if (xs < 0).any() or (xs >= w).any() or (ys < 0).any() or (ys >= h).any():
    raise ValueError(f"perturbation positions must lie inside the {h}x{w} image")
  original = images[np.arange(n)[:, None], ys, xs].astype(np.int32)  # [N, k, 3]
  t, colours = colour_path(original, pert[..., 2:5], steps, beyond)  # [N, S, k, 3]
  s = len(t)
  pos = np.broadcast_to(pert[:, None, :, :2], (n, s, k, 2))
  colour_pixels = np.concatenate([pos, colours], axis=-1).astype(np.int32)

  offsets = position_offsets(radius)
  m = len(offsets)
  shifted = pert[:, None, :, :2] + offsets[None, :, None, :]  # [N, M, k, 2]
  valid = ((shifted[..., 0] >= 0) & (shifted[..., 0] < w) & (shifted[..., 1] >= 0) & (shifted[..., 1] < h)).all(-1)
  shifted = np.clip(shifted, 0, np.array([w - 1, h - 1]))
  rgb = np.broadcast_to(pert[:, None, :, 2:5], (n, m, k, 3))
  position_pixels = np.concatenate([shifted, rgb], axis=-1).astype(np.int32)
  return t, colour_pixels, offsets, position_pixels, valid, original


def probe(predict, images, labels, perturbations, steps: int = 20, beyond: float = 0.5, radius: int = 2,
          batch_size: int = 512) -> Probes:
  """Evaluates colour-path and position probes of N perturbations in one batched call.

  Args:
    predict: a loaded model or a jittable ``uint8[n, H, W, 3] -> float[n, C]``.
    images: uint8[N, H, W, 3] clean images; labels: int[N] their true labels.
    perturbations: int[N, k, 5] (x, y, r, g, b) per pixel, e.g. the
      ``perturbation`` of attack records.
    steps, beyond: the colour path (see ``colour_path``); radius: the position
      neighbourhood (see ``position_offsets``).
  Returns:
    Probes.
  """
  images = np.asarray(images)
  t, cp, offsets, pp, valid, original = probe_pixels(images, perturbations, steps, beyond, radius)
  s = len(t)
  probs = query.probabilities(predict, images, np.concatenate([cp, pp], axis=1), batch_size)
  colour_probs, position_probs = probs[:, :s], probs[:, s:].copy()
  position_probs[~valid] = np.nan
  return Probes(t=t, adversarial_step=steps, colour_pixels=cp, colour_probs=colour_probs, offsets=offsets,
                position_valid=valid, position_probs=position_probs, labels=np.asarray(labels, np.int64),
                adv_labels=colour_probs[:, steps].argmax(-1).astype(np.int64),
                perturbations=np.asarray(perturbations, np.int32), original_colours=original)


# --------------------------------------------------------------------------
# Estimates from the curves.
# --------------------------------------------------------------------------


def first_crossing(t, f, threshold: float) -> float:
  """The first t at which ``f`` reaches ``threshold`` from below, linearly
  interpolated between steps; ``t[0]`` if it starts there; NaN if never."""
  f = np.asarray(f, np.float64)
  hit = np.flatnonzero(f >= threshold)
  if len(hit) == 0:
    return float("nan")
  j = hit[0]
  if j == 0:
    return float(t[0])
  f0, f1 = f[j - 1], f[j]
  return float(t[j - 1] + (threshold - f0) / (f1 - f0) * (t[j] - t[j - 1]))


def estimates(p: Probes) -> dict[str, np.ndarray]:
  """Per perturbation (float64[N] unless noted; NaN where undefined):

  * ``flip_t``: where the label first stops being the true label along the
    colour path (the true class's margin over the runner-up crosses 0).
  * ``flip_class`` (int[N], -1 if no flip): the class that takes over there.
  * ``flip_distance``: ``flip_t`` in RGB units (times ``colour_distance``).
  * ``width_t``: the transition's width, from where the adversarial class's
    two-class share ``p_adv / (p_adv + p_true)`` reaches 0.1 to where it
    reaches 0.9 (NaN if it never reaches 0.9 on the path, incl. beyond).
  * ``width_distance``: ``width_t`` in RGB units.
  * ``neighbour_share``: share of the in-image 8 neighbours (|dx|, |dy| <= 1)
    at which the adversarial colours still give the adversarial label.
  * ``adv_prob``: the adversarial class's probability at t = 1.
  * ``colour_distance``: see ``Probes.colour_distance``.
  * ``margin``: the true class's probability minus the highest other class's
    at t = 1 (negative for a success: how far past the boundary; positive for
    a best candidate that failed: how far from it DE stopped).
  * ``runner_up`` (int[N]): that highest other class at t = 1.
  """
  n = len(p)
  rows = np.arange(n)
  pt = p.colour_probs[rows, :, p.labels]  # [N, S]
  others = p.colour_probs.copy()
  others[rows, :, p.labels] = -np.inf
  margin = pt - others.max(-1)  # > 0 while the true label is predicted
  pa = p.colour_probs[rows, :, p.adv_labels]
  share = pa / np.maximum(pa + pt, 1e-30)
  flip_t = np.full(n, np.nan)
  flip_class = np.full(n, -1)
  width_t = np.full(n, np.nan)
  for i in range(n):
    flip_t[i] = first_crossing(p.t, -margin[i], 0.0) if margin[i, 0] > 0 else np.nan
    if np.isfinite(flip_t[i]):
      j = np.flatnonzero(margin[i] <= 0)[0]
      flip_class[i] = int(np.argmax(p.colour_probs[i, j]))
    if p.adv_labels[i] != p.labels[i]:
      width_t[i] = first_crossing(p.t, share[i], 0.9) - first_crossing(p.t, share[i], 0.1)
  dist = p.colour_distance
  ring = (np.abs(p.offsets).max(1) == 1)
  still = (p.position_probs[:, ring].argmax(-1) == p.adv_labels[:, None]) & p.position_valid[:, ring]
  neighbour_share = still.sum(1) / np.maximum(p.position_valid[:, ring].sum(1), 1)
  neighbour_share = np.where(p.adv_labels != p.labels, neighbour_share, np.nan)
  at = margin[:, p.adversarial_step]
  runner_up = others[:, p.adversarial_step].argmax(-1)
  return {
      "margin": at.astype(np.float64),
      "runner_up": runner_up.astype(np.int64),
      "flip_t": flip_t,
      "flip_class": flip_class,
      "flip_distance": flip_t * dist,
      "width_t": width_t,
      "width_distance": width_t * dist,
      "neighbour_share": neighbour_share,
      "adv_prob": pa[:, p.adversarial_step].astype(np.float64),
      "colour_distance": dist,
  }


def _median(a):
  a = np.asarray(a, np.float64)
  a = a[np.isfinite(a)]
  return float(np.median(a)) if len(a) else None


def by_pair(p: Probes, est: dict | None = None, num_classes: int | None = None) -> list[dict]:
  """Aggregates probes of successful perturbations per (original, adversarial) pair.

  Returns:
    one dict per pair with ``original``, ``adversarial``, ``count``, the
    medians of ``flip_t``, ``flip_distance``, ``width_t``, ``width_distance``
    (None where no value), ``width_reached`` (share with a finite width), the
    mean ``neighbour_share``, and the mean curves ``mean_true_prob`` and
    ``mean_adv_prob`` (float[S], over the pair's probes).
  """
  est = estimates(p) if est is None else est
  out = []
  ok = p.adv_labels != p.labels
  for a, b in sorted({(int(x), int(y)) for x, y in zip(p.labels[ok], p.adv_labels[ok])}):
    sel = ok & (p.labels == a) & (p.adv_labels == b)
    probs = p.colour_probs[sel]
    out.append({
        "original": a,
        "adversarial": b,
        "count": int(sel.sum()),
        "flip_t": _median(est["flip_t"][sel]),
        "flip_distance": _median(est["flip_distance"][sel]),
        "width_t": _median(est["width_t"][sel]),
        "width_distance": _median(est["width_distance"][sel]),
        "width_reached": float(np.isfinite(est["width_t"][sel]).mean()),
        "neighbour_share": float(np.nanmean(est["neighbour_share"][sel])),
        "mean_true_prob": probs[:, :, a].mean(0).tolist(),
        "mean_adv_prob": probs[:, :, b].mean(0).tolist(),
    })
  return out


def position_map(p: Probes) -> dict[str, np.ndarray]:
  """Over successful perturbations, per offset (float64[2r+1, 2r+1], rows dy, columns dx):
  ``adv_prob`` the mean adversarial-class probability, ``still_adversarial``
  the share still classified as the adversarial class."""
  ok = p.adv_labels != p.labels
  side = int(round(np.sqrt(len(p.offsets))))
  if not ok.any():
    nan = np.full((side, side), np.nan)
    return {"adv_prob": nan, "still_adversarial": nan}
  probs = p.position_probs[ok]
  valid = p.position_valid[ok]
  adv = p.adv_labels[ok]
  pa = probs[np.arange(len(adv)), :, adv]
  still = (np.nan_to_num(probs, nan=-1).argmax(-1) == adv[:, None]).astype(np.float64)
  with np.errstate(invalid="ignore"):
    mean_pa = np.where(valid, pa, 0).sum(0) / valid.sum(0)
    mean_still = np.where(valid, still, 0).sum(0) / valid.sum(0)
  return {"adv_prob": mean_pa.reshape(side, side), "still_adversarial": mean_still.reshape(side, side)}


# --------------------------------------------------------------------------
# The outputs: the numbers and the figures' data.
# --------------------------------------------------------------------------


def _round(x, nd=4):
  return None if x is None or not np.isfinite(x) else round(float(x), nd)


_INT_ESTIMATES = ("flip_class", "runner_up")


def summarise(p: Probes, est: dict) -> dict:
  """Medians over successful probes (None where none), and over the best
  candidates of unfooled images: how far from the boundary DE stopped."""
  ok = p.success
  med = lambda k, sel=ok: _median(est[k][sel])  # noqa: E731
  failed = ~ok
  return {
      "probes": len(p), "successful": int(ok.sum()), "best_candidates": int(failed.sum()),
      "median_flip_t": med("flip_t"), "median_flip_distance": med("flip_distance"),
      "median_colour_distance": med("colour_distance"),
      "median_width_t": med("width_t"), "median_width_distance": med("width_distance"),
      "width_reached": float(np.isfinite(est["width_t"][ok]).mean()) if ok.any() else None,
      "mean_neighbour_share": float(np.nanmean(est["neighbour_share"][ok])) if ok.any() else None,
      "flip_before_half": float(np.mean(est["flip_t"][ok] < 0.5)) if ok.any() else None,
      # Best candidates that did not fool the model: the true class's lead at t = 1,
      # and the share whose label flips further along the colour path (t > 1).
      "best_candidate_median_margin": med("margin", failed),
      "best_candidate_flips_beyond": float(np.mean(np.isfinite(est["flip_t"][failed]))) if failed.any() else None,
      "best_candidate_median_flip_t": med("flip_t", failed),
  }


def outputs(p: Probes, ids, class_names, examples: int = 6, meta: dict | None = None, note: str = "") -> Outputs:
  """``probes.npz``, ``probe_summary.json`` and the figures ``probe_curves``,
  ``probe_pairs``, ``probe_positions``. Curves show successful probes first
  (one per pair first, most confident first), then best candidates."""
  est = estimates(p)
  pairs = by_pair(p, est)
  ids = np.asarray(ids)
  out = Outputs()
  out.arrays["probes.npz"] = dict(
      t=p.t, colour_probs=p.colour_probs, position_probs=p.position_probs, position_valid=p.position_valid,
      offsets=p.offsets, labels=p.labels, adv_labels=p.adv_labels, perturbations=p.perturbations,
      original_colours=p.original_colours, ids=ids, **est)
  c = p.colour_probs.shape[-1]
  per = [{"id": int(ids[i]), "label": int(p.labels[i]), "adv_label": int(p.adv_labels[i]),
          "probed": "success" if p.success[i] else "best candidate",
          "perturbation": p.perturbations[i].tolist(),
          **{k: (int(v[i]) if k in _INT_ESTIMATES else _round(v[i])) for k, v in est.items()}}
         for i in range(len(p))]
  s = summarise(p, est)
  out.json["probe_summary.json"] = {**(meta or {}), "note": note, "t": p.t.tolist(),
                                    "adversarial_step": p.adversarial_step, "summary": s, "pairs": pairs,
                                    "probes": per}

  ok = np.flatnonzero(p.success)
  order = ok[np.argsort(-est["adv_prob"][ok], kind="stable")]
  seen, chosen = set(), []
  for i in order:  # one per pair first
    if (p.labels[i], p.adv_labels[i]) not in seen:
      seen.add((p.labels[i], p.adv_labels[i]))
      chosen.append(int(i))
  failed = np.flatnonzero(~p.success)
  failed = failed[np.argsort(est["margin"][failed], kind="stable")]  # closest to the boundary first
  chosen = (chosen + [int(i) for i in order if int(i) not in chosen] + [int(i) for i in failed])[:examples]
  ex = []
  for i in chosen:
    x, y = p.perturbations[i, 0, :2]
    if p.success[i]:
      other = int(p.adv_labels[i])
      title = (f"id {ids[i]}: {class_names[p.labels[i]]} -> {class_names[other]} "
               f"at ({x},{y}), |dRGB|={est['colour_distance'][i]:.0f}")
    else:
      other = int(est["runner_up"][i])
      title = (f"id {ids[i]}: {class_names[p.labels[i]]}, best candidate (not fooled) at ({x},{y}): "
               f"leads {class_names[other]} by {est['margin'][i]:.2f}")
    pa, pt = p.colour_probs[i, :, other], p.colour_probs[i, :, p.labels[i]]
    share = pa / np.maximum(pa + pt, 1e-30)
    ex.append({"title": title, "probs": p.colour_probs[i], "label": int(p.labels[i]), "adv_label": other,
               "success": bool(p.success[i]), "flip_t": est["flip_t"][i],
               "width_lo": first_crossing(p.t, share, 0.1), "width_hi": first_crossing(p.t, share, 0.9)})
  kinds = f"{s['successful']} successful perturbations, {s['best_candidates']} best candidates of unfooled images"
  out.figures["probe_curves"] = ("probe_curves", {
      "t": p.t, "examples": ex, "class_names": class_names, "note": note,
      "title": f"class probabilities along the colour path ({kinds})"})
  mat = {k: np.full((c, c), np.nan) for k in ("flip_distance", "width_distance")}
  count = np.zeros((c, c), int)
  for q in pairs:
    for k in mat:
      mat[k][q["original"], q["adversarial"]] = np.nan if q[k] is None else q[k]
    count[q["original"], q["adversarial"]] = q["count"]
  out.figures["probe_pairs"] = ("probe_pairs", {**mat, "count": count, "class_names": class_names, "note": note})
  pm = position_map(p)
  out.figures["probe_positions"] = ("probe_positions", {
      **pm, "radius": int(np.abs(p.offsets).max()) if len(p.offsets) else 0, "note": note})
  return out
