"""Reads a PyTorch state dict (``torch.save(model.state_dict(), f)``) without
PyTorch and without unpickling arbitrary objects.

Both of PyTorch's file formats are understood:

- legacy (before PyTorch 1.6): a pickled magic number, protocol version and
  system info, then the pickled state dict whose tensors name their storages
  by persistent id, then the pickled list of storage keys, then each storage
  as an int64 element count followed by its raw little-endian bytes;
- zip (PyTorch >= 1.6): ``<archive>/data.pkl`` holding the pickled state dict
  and ``<archive>/data/<key>`` holding each storage's raw bytes.

The unpickler resolves only the globals a state dict of plain tensors needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_parameter`` and the ``torch.*Storage`` classes, mapped
to NumPy dtypes); anything else raises :class:`UnsafeCheckpointError` before
it could run. Tensor views are bounds-checked against their storage.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

__all__ = ["UnsafeCheckpointError", "read_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def _dtypes() -> dict[str, np.dtype]:
  out = {
      "DoubleStorage": np.dtype("<f8"), "FloatStorage": np.dtype("<f4"),
      "HalfStorage": np.dtype("<f2"), "LongStorage": np.dtype("<i8"),
      "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
      "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
      "BoolStorage": np.dtype("?"),
  }
  try:  # ml_dtypes comes with jax
    import ml_dtypes
    out["BFloat16Storage"] = np.dtype(ml_dtypes.bfloat16)
  except ImportError:  # pragma: no cover
    pass
  return out


STORAGE_DTYPES = _dtypes()


class UnsafeCheckpointError(ValueError):
  """The file asks the unpickler for something a state dict does not need."""


class _Frozen:
  """Objects the unpickler creates; a pickle may not set their attributes (BUILD)."""
  __slots__ = ()

  def __setstate__(self, state):
    raise UnsafeCheckpointError(f"refusing to set the state of a {type(self).__name__.lstrip('_')}")


class _StorageType(_Frozen):
  __slots__ = ("name", "dtype")

  def __init__(self, name: str):
    self.name = name
    self.dtype = STORAGE_DTYPES[name]


class _Storage(_Frozen):
  """A storage whose bytes may arrive after the pickle (legacy format)."""
  __slots__ = ("dtype", "numel", "_data")

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel = dtype, numel
    self._data: np.ndarray | None = None

  @property
  def data(self) -> np.ndarray | None:
    return self._data


class _Tensor(_Frozen):
  __slots__ = ("storage", "offset", "size", "stride")

  def __init__(self, storage: _Storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def materialize(self) -> np.ndarray:
    data = self.storage.data
    if data is None:
      raise ValueError("a tensor's storage has no data in the file")
    _check_bounds(self.offset, self.size, self.stride, len(data))
    if any(n == 0 for n in self.size):
      return np.zeros(self.size, data.dtype)
    if not self.size:
      return np.array(data[self.offset], copy=True)
    item = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=self.size, strides=[s * item for s in self.stride], writeable=False)
    return np.array(view, order="C")


def _check_bounds(offset, size, stride, numel):
  """Every element a (offset, size, stride) view touches lies inside the storage."""
  if all(n > 0 for n in size):
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
      raise ValueError(f"malformed tensor: size {size} stride {stride} offset {offset} "
                       f"reaches past its storage of {numel} elements")


def _int_tuple(v, what: str) -> tuple[int, ...]:
  if not isinstance(v, tuple) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v):
    raise ValueError(f"malformed tensor {what}: {v!r}")
  return v


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  if not isinstance(storage, (_Storage, _ViewStorage)):
    raise ValueError("malformed tensor: its storage is not a storage")
  size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
  if not isinstance(storage_offset, int) or storage_offset < 0 or len(size) != len(stride):
    raise ValueError(f"malformed tensor: offset {storage_offset!r}, size {size}, stride {stride}")
  _check_bounds(storage_offset, size, stride, storage.numel)
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  if not isinstance(data, _Tensor):
    raise ValueError("malformed parameter")
  return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, storages: dict):
    super().__init__(file)
    self.storages = storages

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == "torch" and name in STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafeCheckpointError(
        f"refusing to load global {module}.{name}: only a state dict of tensors "
        f"(OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage) can be read")

  def persistent_load(self, pid):
    if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
      raise UnsafeCheckpointError(f"unexpected persistent id {pid!r:.80}")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
      raise UnsafeCheckpointError(f"unexpected storage type {storage_type!r:.80}")
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
      raise ValueError(f"malformed storage id {pid!r:.80}")
    view = pid[5] if len(pid) > 5 else None
    if key not in self.storages:
      self.storages[key] = _Storage(storage_type.dtype, numel)
    root = self.storages[key]
    if root.dtype != storage_type.dtype:
      raise ValueError(f"storage {key} is read with two dtypes")
    if view is None:
      return root
    # Legacy storage views: (view_key, offset, size) into the root storage.
    view_key, offset, size = view
    if not (isinstance(offset, int) and isinstance(size, int) and 0 <= offset and offset + size <= numel):
      raise ValueError(f"malformed storage view {view!r:.80}")
    return _ViewStorage(root, offset, size)


class _ViewStorage(_Frozen):
  __slots__ = ("root", "view_offset", "dtype", "numel")

  def __init__(self, root: _Storage, offset: int, size: int):
    self.root, self.view_offset = root, offset
    self.dtype, self.numel = root.dtype, size

  @property
  def data(self):
    d = self.root.data
    return None if d is None else d[self.view_offset:self.view_offset + self.numel]


def _check_state_dict(obj, path) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict):
    raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
  out = {}
  for k, v in obj.items():
    if not isinstance(k, str):
      raise ValueError(f"{path}: state dict key {k!r:.40} is not a string")
    if not isinstance(v, _Tensor):
      raise ValueError(f"{path}: state dict entry {k!r} is a {type(v).__name__}, not a tensor")
    out[k] = v.materialize()
  return out


def _read_legacy(f, path) -> dict[str, np.ndarray]:
  magic = _Unpickler(f, {}).load()
  if magic != LEGACY_MAGIC:
    raise ValueError(f"{path} is not a PyTorch checkpoint (bad magic number)")
  protocol = _Unpickler(f, {}).load()
  if protocol != LEGACY_PROTOCOL:
    raise ValueError(f"{path}: unsupported legacy protocol version {protocol!r}")
  sys_info = _Unpickler(f, {}).load()
  if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
    raise ValueError(f"{path}: big-endian checkpoints are not supported")
  storages: dict[str, _Storage] = {}
  obj = _Unpickler(f, storages).load()
  keys = _Unpickler(f, {}).load()
  if not isinstance(keys, list) or set(keys) != set(storages):
    raise ValueError(f"{path}: the storage list does not match the tensors")
  for key in keys:
    st = storages[key]
    head = f.read(8)
    if len(head) != 8:
      raise ValueError(f"{path} is truncated (storage {key})")
    (count,) = struct.unpack("<q", head)
    if count != st.numel:
      raise ValueError(f"{path}: storage {key} has {count} elements, its tensors expect {st.numel}")
    nbytes = count * st.dtype.itemsize
    raw = f.read(nbytes)
    if len(raw) != nbytes:
      raise ValueError(f"{path} is truncated (storage {key})")
    st._data = np.frombuffer(raw, st.dtype)
  return _check_state_dict(obj, path)


def _read_zip(path) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(path) as z:
    names = z.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
      raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no <archive>/data.pkl)")
    prefix = pkl[0][: -len("data.pkl")]
    if prefix + "byteorder" in names and z.read(prefix + "byteorder").strip() != b"little":
      raise ValueError(f"{path}: big-endian checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(io.BytesIO(z.read(pkl[0])), storages).load()
    for key, st in storages.items():
      name = f"{prefix}data/{key}"
      if name not in names:
        raise ValueError(f"{path}: storage {key} is missing")
      raw = z.read(name)
      if len(raw) != st.numel * st.dtype.itemsize:
        raise ValueError(f"{path}: storage {key} has {len(raw)} bytes, its tensors expect "
                         f"{st.numel * st.dtype.itemsize}")
      st._data = np.frombuffer(raw, st.dtype)
  return _check_state_dict(obj, path)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """``{name: np.ndarray}`` from a ``torch.save``d state dict, either format.

  Raises:
    FileNotFoundError: no such file.
    UnsafeCheckpointError: the pickle names a global outside the allow-list.
    ValueError: not a PyTorch checkpoint, truncated, or not a flat state dict.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  try:
    if zipfile.is_zipfile(path):
      return _read_zip(path)
    with open(path, "rb") as f:
      return _read_legacy(f, path)
  except UnsafeCheckpointError:
    raise
  except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, TypeError,
          AttributeError, IndexError, KeyError) as e:
    raise ValueError(f"{path} is not a readable PyTorch state dict ({type(e).__name__}: {e})") from None
