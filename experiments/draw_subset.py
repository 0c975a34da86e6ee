r"""Writes a CIFAR-10 tarball cut down to the images a seeded draw reaches.

    python -m experiments.draw_subset --keep=200 --out=.devdata/cifar10-jpeg.tar.gz

The first ``--keep`` images of the seeded order that the attack jobs and
``reproduce_paper`` draw from keep their bytes; every other image of the
split becomes one constant grey image, so the subset loads with the same
length, order and labels, and any run that examines at most ``--keep``
images with that seed attacks the same images (``data.draw_subset_members``).
The test split at ``--keep=200`` is 0.2 MB against the whole archive's 19 MB:
small enough to travel with the repository to a machine with little upload
room (how NiN's Table V run was finished on a lent GPU). A run resumes only
where its recorded ``data`` path matches, so there put the subset at the
same path (or point ``ONEPIXEL_CIFAR10`` at it before the run begins).
"""

import io
import os
import sys
import tarfile
import tempfile

from absl import app, flags

from onepixel_jax import data

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "", "CIFAR-10 tarball (default: $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz).")
flags.DEFINE_integer("keep", None, "Images of the seeded order that keep their own bytes.")
flags.DEFINE_integer("seed", 0, "The draw's seed (the presets' seed).")
flags.DEFINE_string("split", "test", "The split to keep.")
flags.DEFINE_string("out", None, "The subset tarball (.tar.gz).")
flags.mark_flags_as_required(["keep", "out"])


def main(argv):
  if len(argv) > 1:
    sys.exit(f"draw_subset: error: unexpected arguments {argv[1:]}")
  try:
    members = data.draw_subset_members(FLAGS.data or data.default_tarball(), FLAGS.keep, FLAGS.seed, FLAGS.split)
  except (ValueError, OSError) as e:
    sys.exit(f"draw_subset: error: {e}".splitlines()[0])
  out = os.path.abspath(FLAGS.out)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), suffix=".tar.gz")
  with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
    for name, b in members:
      info = tarfile.TarInfo(name)
      info.size = len(b)
      tar.addfile(info, io.BytesIO(b))
  os.replace(tmp, out)
  print(f"draw_subset: wrote {FLAGS.out}: {len(members)} {FLAGS.split} images, the first {FLAGS.keep} of "
        f"seed {FLAGS.seed}'s order kept, {os.path.getsize(out) / 1e6:.2f} MB")


if __name__ == "__main__":
  app.run(main)
