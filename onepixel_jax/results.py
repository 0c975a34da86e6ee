"""Attack records on disk: one JSON object per line, appended as attacks finish.

A run killed at any moment leaves at worst a torn last line (the attack that
was being written); ``read`` drops it and ``repair`` truncates it, so a
restarted run appends after the last complete record.
"""

from __future__ import annotations

import json
import os


def append(path, records) -> None:
  """Appends records, each as one line written in a single ``write`` and flushed to disk."""
  with open(path, "a", encoding="utf-8") as f:
    for r in records:
      f.write(json.dumps(r, separators=(",", ":")) + "\n")
      f.flush()
    os.fsync(f.fileno())


def repair(path) -> int:
  """Truncates a torn (unterminated) last line; returns the bytes removed."""
  if not os.path.exists(path):
    return 0
  with open(path, "rb+") as f:
    data = f.read()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
      f.truncate(keep)
    return len(data) - keep


def read(path) -> list[dict]:
  """All complete records of a JSONL file ([] if it does not exist).

  Raises:
    ValueError naming the file and line if a complete line is not JSON.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  lines = data.split(b"\n")[:-1]  # the part after the last newline is torn or empty
  out = []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{i} is not a JSON record ({e.msg})") from None
  return out
