"""Figures (matplotlib, Agg backend): adversarial examples like the paper's Fig. 1."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from onepixel_jax import perturb  # noqa: E402


def _label(names, c):
  return names[c] if names is not None and 0 <= c < len(names) else str(c)


def examples(images, records, class_names=None, path=None, max_examples: int = 8, title: str | None = None):
  """Original beside adversarial image for up to ``max_examples`` records.

  Args:
    images: mapping or array indexable by a record's ``id`` -> uint8[H, W, 3].
    records: attack records (successful ones are shown first).
    class_names: label names.
    path: where to save (PNG, or PDF by extension); None returns the figure.
  The changed pixels are circled; titles give the true label and its clean
  probability, and the adversarial label with its probability.
  """
  chosen = sorted(records, key=lambda r: (not r["success"], -r["adversarial_prob"]))[:max_examples]
  n = max(1, len(chosen))
  fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.6), squeeze=False)
  for j, r in enumerate(chosen):
    img = np.asarray(images[r["id"]])
    pixels = np.asarray(r["perturbation"], np.int32)
    adv = np.asarray(perturb.apply(img, pixels))
    top, bottom = axes[0, j], axes[1, j]
    top.imshow(img, interpolation="nearest")
    clean_p = r.get("clean_prob")
    top.set_title(f"true: {_label(class_names, r['label'])}" + (f"\n({clean_p:.0%})" if clean_p is not None else ""),
                  fontsize=8)
    bottom.imshow(adv, interpolation="nearest")
    mark = "" if r["success"] else " (failed)"
    tgt = "" if r["target"] is None else f"\ntarget: {_label(class_names, r['target'])}"
    # Below the adversarial image, so that it never covers the clean one.
    bottom.set_xlabel(f"adv: {_label(class_names, r['predicted'])} ({r['adversarial_prob']:.0%}){mark}{tgt}",
                      fontsize=8, color="crimson" if r["success"] else "gray")
    radius = max(img.shape[:2]) / 16
    for x, y, *_ in pixels.tolist():
      bottom.add_patch(plt.Circle((x, y), radius, fill=False, color="yellow", lw=1.5))
    for ax in (top, bottom):
      ax.set_xticks([])
      ax.set_yticks([])
  for j in range(len(chosen), n):
    axes[0, j].axis("off")
    axes[1, j].axis("off")
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  if path is None:
    return fig
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
