"""Readers for the benchmarks' data: MNIST (TFDS or IDX files), UEA/UCR `.ts`, `.npz` features.

Nothing here downloads. Every reader validates what it reads and raises
`DataError` (a `ValueError`) with a message that names the file and the problem.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
import struct
from typing import Optional

import numpy as np


class DataError(ValueError):
    """A data file or directory is missing, truncated or malformed."""


# Feature values must be finite and at most this large in magnitude: float32 holds up to
# 3.4e38, and standardization (computed in float64) then stays far from any overflow; real
# features (pixels, accelerations, CNN activations) are many orders of magnitude smaller.
MAX_ABS_VALUE = 1e30


def _check_values(where: str, values: np.ndarray, what: str = "values"):
    """Refuses non-finite values and values beyond `MAX_ABS_VALUE` (missing values are NaN
    before this check only where a reader documents them)."""
    bad = ~np.isfinite(values) | (np.abs(np.where(np.isfinite(values), values, 0)) > MAX_ABS_VALUE)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{where}: {what} must be finite numbers of magnitude <= {MAX_ABS_VALUE:g}; "
                        f"got {values[index]!r} at index {index}")


def _check_integral(where: str, name: str, values: np.ndarray) -> np.ndarray:
    """``values`` when they are integers (an integer dtype, kept; or floats with no fractional
    part, as int64); `DataError` otherwise (no silent truncation)."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values
    if values.dtype.kind == "f" and np.isfinite(values).all() and np.all(values == np.round(values)):
        return values.astype(np.int64)
    raise DataError(f"{where}: {name} must be integers; got dtype {values.dtype} "
                    f"(e.g. {values.reshape(-1)[:3].tolist()})")


# --- IDX (MNIST) --------------------------------------------------------------

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


# No IDX file this project reads is larger (MNIST's training images: 47 MB); a gzip stream
# that inflates beyond it is refused as it inflates, not after.
MAX_IDX_BYTES = 256 * 2**20


def _open_maybe_gzip(path: pathlib.Path, limit: int = MAX_IDX_BYTES) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    import zlib
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflate.decompress(raw, limit + 1)
    except zlib.error as error:
        raise DataError(f"{path}: corrupt gzip stream ({error})") from None
    if len(data) > limit:
        raise DataError(f"{path}: inflates to more than {limit // 2**20} MiB; not an IDX file of a data set "
                        "this project reads")
    if not inflate.eof:
        raise DataError(f"{path}: corrupt gzip stream (truncated)")
    if inflate.unused_data:
        raise DataError(f"{path}: {len(inflate.unused_data)} bytes of trailing data after the gzip stream; "
                        "an IDX file is one gzip member (a damaged or concatenated download?)")
    return data


def read_idx(path, expected_ndim: Optional[int] = None) -> np.ndarray:
    """Reads an IDX file (optionally gzip-compressed) into a NumPy array.

    Validates the magic number (two zero bytes, a known type code, the number of
    dimensions), that the payload holds exactly prod(dims) items, and, when
    given, the number of dimensions (3 for images, 1 for labels).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {path} not found")
    data = _open_maybe_gzip(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    zero, type_code, ndim = data[0:2], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}; an IDX file starts with "
                        "0x0000TTNN (TT a type code such as 08 for uint8, NN the number of dimensions)")
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataError(f"{path}: magic 0x{magic:08x} says {ndim} dimensions; expected {expected_ndim} "
                        f"(0x{0x800 + expected_ndim:08x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize
    payload = len(data) - header
    if payload != expected:
        raise DataError(f"{path}: {'truncated' if payload < expected else 'oversized'} IDX payload: "
                        f"dims {dims} need {expected} bytes, file has {payload}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}


def _find(directory: pathlib.Path, name: str) -> pathlib.Path:
    found = [c for c in (directory / name, directory / (name + ".gz")) if c.is_file()]
    if len(found) == 2:
        raise DataError(f"{directory}: both {name} and {name}.gz exist; keep one (which of them is the data "
                        "cannot be told)")
    if found:
        return found[0]
    raise DataError(f"MNIST file {name}[.gz] not found in {directory}")


def load_mnist_idx(directory, split: str):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of ``split`` from the four IDX files."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise DataError(f"MNIST data directory {directory} not found")
    images_name, labels_name, count = MNIST_FILES[split]
    images = read_idx(_find(directory, images_name), expected_ndim=3)
    labels = read_idx(_find(directory, labels_name), expected_ndim=1)
    if images.shape != (count, 28, 28):
        raise DataError(f"{directory}/{images_name}: shape {images.shape}; expected ({count}, 28, 28)")
    if labels.shape != (count,):
        raise DataError(f"{directory}/{labels_name}: {labels.shape[0]} labels; expected {count}")
    if images.dtype != np.uint8:
        raise DataError(f"{directory}/{images_name}: MNIST pixels are uint8 (IDX type 0x08); got {images.dtype}")
    labels = _check_integral(f"{directory}/{labels_name}", "labels", labels)
    if labels.min() < 0 or labels.max() > 9:
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise DataError(f"{directory}/{labels_name}: label {bad} outside 0..9")
    return images, labels


def load_mnist(data_dir, split: str, tfds_data_dir: Optional[str] = None):
    """MNIST ``split`` as (images uint8 [N, 28, 28], labels [N]).

    Uses a prepared TFDS MNIST when one exists in ``tfds_data_dir`` (never
    downloads); otherwise the IDX files in ``data_dir`` (or ``data_dir/mnist``).
    """
    tfds_result = _load_mnist_tfds(split, tfds_data_dir)
    if tfds_result is not None:
        return tfds_result
    directory = pathlib.Path(data_dir)
    if (directory / "mnist").is_dir() and not any(directory.glob("*idx*")):
        directory = directory / "mnist"
    return load_mnist_idx(directory, split)


def _load_mnist_tfds(split: str, tfds_data_dir: Optional[str]):
    """MNIST from a prepared TFDS data set (array_record data source, no TensorFlow
    needed), or None when there is none. Never downloads."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS warns about the folders it probes
    try:
        source = tfds.data_source("mnist", split=split, data_dir=tfds_data_dir, download=False)
    except Exception:  # not prepared here (TFDS raises several kinds of errors for that)
        return None
    finally:
        absl_logging.set_verbosity(verbosity)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(e["image"]).reshape(28, 28) for e in examples]).astype(np.uint8)
    labels = np.asarray([int(e["label"]) for e in examples])
    return images, labels


# --- UEA/UCR .ts --------------------------------------------------------------

@dataclasses.dataclass
class SequenceDataset:
    """Padded variable-length sequences: ``features [N, T, D]`` (zeros after each
    length), ``lengths [N]``, integer ``labels [N]`` and the class names."""

    features: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    class_names: list

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _fill_missing(series: np.ndarray) -> np.ndarray:
    """Trailing steps with a missing value are padding (cut after the last step
    where every channel has a value); then, channel by channel, a missing value
    takes the last value of its channel seen before it, or, before the channel's
    first value, that first value. Returns ``[length, channels]``."""
    finite = np.isfinite(series).all(axis=-1)
    if not finite.any():
        return series[:0]
    series = series[: np.nonzero(finite)[0][-1] + 1].copy()
    for channel in series.T:  # views: filled in place
        present = np.isfinite(channel)
        first = np.argmax(present)
        channel[:first] = channel[first]
        for t in range(first + 1, len(channel)):
            if not present[t]:
                channel[t] = channel[t - 1]
    return series


_TS_NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity)", re.ASCII | re.IGNORECASE)


def _ts_value(text: str, where: str) -> float:
    """One `.ts` value: "?" or "NaN" is missing (NaN); anything else must be a finite number
    of magnitude <= `MAX_ABS_VALUE` (1e300 or inf are errors, not missing values)."""
    text = text.strip()
    if text == "?" or text.lower() == "nan":
        return float("nan")
    if not _TS_NUMBER.fullmatch(text):  # float() also reads "1_000" and non-ASCII digits
        raise DataError(f"{where}: value {text!r} is not a number (a plain decimal: digits 0-9, an optional "
                        "sign, point and exponent)")
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise DataError(f"{where}: value {text!r} is not a finite number of magnitude <= {MAX_ABS_VALUE:g}")
    return value


def read_ts(path) -> SequenceDataset:
    """Reads a UEA/UCR `.ts` file (classification, no timestamps).

    Validates the header (``@problemName``, ``@classLabel true ...``, ``@data``;
    ``@dimensions``, ``@seriesLength``, ``@equalLength`` and ``@timeStamps``
    when present), and that every case has the declared number of dimensions,
    the same length in every dimension, the declared series length and a known
    class label.

    Missing values (``NaN`` or ``?``): those at the end of a series are padding
    and shorten it; interior ones repeat the previous value (leading ones the
    first value present).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f".ts file {path} not found")
    header: dict = {}
    cases, labels = [], []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{number}"
            if not in_data:
                if not line.startswith("@"):
                    raise DataError(f"{where}: expected a header line starting with '@' before @data; got {line[:40]!r}")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    _check_header(path, header)
                else:
                    header[key] = value.strip()
                continue
            *dims, label = line.split(":")
            if not dims:
                raise DataError(f"{where}: a case needs dimensions and a class label separated by ':'")
            if label not in header["class_names"]:
                raise DataError(f"{where}: class label {label!r} not in @classLabel {header['class_names']}")
            if header.get("dimensions") is not None and len(dims) != header["dimensions"]:
                raise DataError(f"{where}: {len(dims)} dimensions; @dimensions says {header['dimensions']}")
            try:
                values = [[_ts_value(v, where) for v in d.split(",")] for d in dims]
            except ValueError as error:
                if isinstance(error, DataError):
                    raise
                raise DataError(f"{where}: not a number ({error})") from None
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                raise DataError(f"{where}: inconsistent lengths across dimensions {sorted(lengths)}")
            length = lengths.pop()
            if header.get("series_length") is not None and length != header["series_length"]:
                raise DataError(f"{where}: length {length}; @seriesLength says {header['series_length']}")
            cases.append(np.asarray(values, np.float32).T)  # [T, D]
            labels.append(header["class_names"].index(label))
    if not in_data:
        raise DataError(f"{path}: no @data line; not a .ts file")
    if not cases:
        raise DataError(f"{path}: no cases after @data")
    dims = {c.shape[1] for c in cases}
    if len(dims) != 1:
        raise DataError(f"{path}: cases have different numbers of dimensions {sorted(dims)}")
    if header.get("equal_length") and len({c.shape[0] for c in cases}) != 1:
        raise DataError(f"{path}: @equalLength true but lengths are {sorted({c.shape[0] for c in cases})[:5]}...")
    cases = [_fill_missing(c) for c in cases]
    for index, case in enumerate(cases):
        if len(case) == 0:
            raise DataError(f"{path}: case {index} has no values (all missing)")
    max_len = max(len(c) for c in cases)
    features = np.zeros((len(cases), max_len, dims.pop()), np.float32)
    for i, case in enumerate(cases):
        features[i, : len(case)] = case
    return SequenceDataset(features, np.array([len(c) for c in cases], np.int32),
                           np.array(labels, np.int32), list(header["class_names"]))


def _check_header(path, header: dict):
    def boolean(key):
        value = header.get(key)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise DataError(f"{path}: @{key} must be true or false; got {value!r}")
        return value.lower() == "true"

    def positive_int(key):
        value = header.get(key)
        if value is None:
            return None
        if not re.fullmatch(r"\d+", value, re.ASCII) or int(value) < 1:
            raise DataError(f"{path}: @{key} must be a positive integer; got {value!r}")
        return int(value)

    if "problemname" not in header:
        raise DataError(f"{path}: header lacks @problemName")
    labels = header.get("classlabel", "").split()
    if not labels or labels[0].lower() != "true" or len(labels) < 3:
        raise DataError(f"{path}: header needs '@classLabel true <at least two labels>'; "
                        f"got {header.get('classlabel')!r}")
    if boolean("timestamps"):
        raise DataError(f"{path}: @timeStamps true is not supported")
    twice = sorted({label for label in labels[1:] if labels[1:].count(label) > 1})
    if twice:
        raise DataError(f"{path}: @classLabel lists {twice[0]!r} twice ({' '.join(labels[1:])}); each class once")
    header["class_names"] = labels[1:]
    header["dimensions"] = positive_int("dimensions")
    header["series_length"] = positive_int("serieslength")
    header["equal_length"] = boolean("equallength")
    boolean("univariate")
    boolean("missing")
    if boolean("univariate") and header["dimensions"] not in (None, 1):
        raise DataError(f"{path}: @univariate true but @dimensions {header['dimensions']}")


def load_uea(data_dir, name: str):
    """(train, test) `SequenceDataset` of the UEA set ``name`` from ``{data_dir}/{name}_TRAIN.ts``."""
    directory = pathlib.Path(data_dir)
    if not directory.is_dir():
        raise DataError(f"data directory {directory} not found")
    if not (directory / f"{name}_TRAIN.ts").exists() and (directory / "uea").is_dir():
        directory = directory / "uea"
    train = check_training_classes(read_ts(directory / f"{name}_TRAIN.ts"), directory / f"{name}_TRAIN.ts")
    test = read_ts(directory / f"{name}_TEST.ts")
    if train.class_names != test.class_names or train.features.shape[2] != test.features.shape[2]:
        raise DataError(f"{directory}: {name} train and test differ in classes or dimensions")
    return train, test


def check_training_classes(data: SequenceDataset, where) -> SequenceDataset:
    """``data`` if its cases carry at least two different labels, else `DataError` (a
    classifier trained on one class scores 100% by predicting it)."""
    present = sorted({int(x) for x in np.unique(data.labels)})
    if len(present) < 2:
        names = [data.class_names[i] for i in present]
        raise DataError(f"{where}: every training case has the label {names[0] if names else '?'!r} "
                        f"(of the declared {data.class_names}); training needs at least two classes")
    return data


def load_npz(path) -> SequenceDataset:
    """Precomputed per-frame features: an `.npz` with ``features [N, T, D]``,
    ``labels [N]`` and optionally ``lengths [N]`` (default: T) and ``class_names``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"features file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except Exception as error:  # noqa: BLE001  zipfile.BadZipFile, EOFError, OSError, ValueError, ...
        raise DataError(f"{path}: not a readable .npz ({type(error).__name__}: {error})") from None
    for key in ("features", "labels"):
        if key not in contents:
            raise DataError(f"{path}: missing array {key!r} (has {sorted(contents)})")
    raw = np.asarray(contents["features"])
    if raw.dtype.kind not in "iuf":
        raise DataError(f"{path}: features must be real numbers; got dtype {raw.dtype}")
    _check_values(str(path), raw, "features")
    features = raw.astype(np.float32)
    labels = _check_integral(str(path), "labels", contents["labels"])
    if features.ndim != 3 or labels.shape != (features.shape[0],) or 0 in features.shape:
        raise DataError(f"{path}: features must be [N, T, D] with N, T, D >= 1 and labels [N]; "
                        f"got {features.shape} and {labels.shape}")
    lengths = _check_integral(str(path), "lengths",
                              contents.get("lengths", np.full(len(labels), features.shape[1])))
    if lengths.shape != labels.shape or lengths.min() < 1 or lengths.max() > features.shape[1]:
        raise DataError(f"{path}: lengths must be [N] in 1..{features.shape[1]}")
    if "class_names" in contents:
        class_names = [str(c) for c in contents["class_names"]]
    else:
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{path}: labels outside 0..{len(class_names) - 1}")
    if len(class_names) < 2:
        raise DataError(f"{path}: one class only ({class_names}); classification needs at least two")
    return SequenceDataset(features, lengths.astype(np.int32), labels.astype(np.int32), class_names)
