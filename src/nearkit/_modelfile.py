"""The container of a nearkit model file: a checked JSON header and raw, aligned arrays.

Layout (all integers little-endian)::

    offset 0    MAGIC (8 bytes)
    offset 8    header length H (uint64)
    offset 16   sha256 of the header (32 bytes)
    offset 48   the header: H bytes of JSON (ASCII)
                zero bytes up to a multiple of ALIGN: the data section starts there
                each array's raw C-order bytes at its offset (a multiple of ALIGN) in the
                data section, zero bytes between arrays; the file ends with the last array

The header's ``arrays`` list gives every array's name, dtype (``'<f8'``, ``'<i8'``, ``'|b1'``,
``'<U7'``, ...: numbers, booleans and fixed-width text, never objects), shape, offset, byte
count and sha256, in file order; ``data_nbytes`` is the length of the data section.  Arrays
are read as views of one memory map (or of one buffer), so loading copies nothing.

:func:`read_model_file` refuses, with a ValueError saying what is wrong, a file that is not a
model file (a pickle, a zip or ``.npz``, a ``.npy``), a truncated file, a file longer than its
header declares, a header whose checksum fails, an unknown format version, a header whose
array table is inconsistent (a shape that does not match the bytes, overlapping or misplaced
arrays), and every array whose sha256 fails.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from pathlib import Path

import numpy as np

MAGIC = b"\x89NEARKIT"
#: the container's format name and the version this code reads and writes
FORMAT = "nearkit-model"
FORMAT_VERSION = 1
#: arrays start at multiples of this many bytes (a cache line; any dtype's alignment)
ALIGN = 64
_PREAMBLE = len(MAGIC) + 8 + 32
#: the dtypes an array may have: little-endian numbers, booleans and fixed-width text
_DTYPE = re.compile(r"^(<[iu][248]|<f[48]|\|[iub]1|<U\d{1,6})$")
#: the first bytes of files that are not model files, and what they are
_OTHER_FORMATS = (
    (b"\x80", "a pickle file (pickle, joblib): nearkit never unpickles, since loading a "
              "pickle runs code"),
    (b"PK\x03\x04", "a zip archive (.npz, skops, ...)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)


def _aligned(n):
    return -(-n // ALIGN) * ALIGN


def write_model_file(path, header, arrays):
    """Write ``header`` (a JSON-able dict) and ``arrays`` (name -> ndarray) to ``path``.

    The header gets the keys ``format``, ``format_version``, ``arrays`` and ``data_nbytes``.
    The file is written next to ``path`` and renamed over it, so a reader never sees half a
    file (and a model mapped from the old file keeps its data).

    Returns
    -------
    int
        The size of the file in bytes.
    """
    table, blobs, end = [], [], 0
    for name, array in arrays.items():
        array = np.asarray(array)
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would make a 0-d array 1-d)
            array = array.copy(order="C")
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        if not _DTYPE.match(array.dtype.str):
            raise ValueError(f"Array {name!r} has dtype {array.dtype}, which a model file "
                             "cannot hold (numbers, booleans and fixed-width text only).")
        offset = _aligned(end)
        table.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                      "offset": offset, "nbytes": array.nbytes,
                      "sha256": hashlib.sha256(array.data).hexdigest()})
        blobs.append((offset - end, array))
        end = offset + array.nbytes
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **header,
              "arrays": table, "data_nbytes": end}
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("ascii")
    path = Path(path)
    # unique per call: two threads saving to one path must not share (and delete) a file
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(MAGIC + len(text).to_bytes(8, "little") + hashlib.sha256(text).digest())
            file.write(text)
            file.write(bytes(_aligned(_PREAMBLE + len(text)) - _PREAMBLE - len(text)))
            for gap, array in blobs:
                file.write(bytes(gap))
                file.write(array.data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.stat().st_size


def read_model_file(path, *, mmap=True):
    """The checked header and arrays of a model file.

    Parameters
    ----------
    path : str or path-like
    mmap : bool, default=True
        Map the file into memory (copy-on-write: the arrays are writable, the file is never
        changed) instead of reading it.

    Returns
    -------
    header : dict
    arrays : dict of str to ndarray
        Every array of the file, its sha256 verified.
    size : int
        The size of the file in bytes.

    Raises
    ------
    ValueError
        Naming what is wrong (see the module docstring).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(_PREAMBLE)
        _check_signature(head, path)
        header_nbytes = int.from_bytes(head[8:16], "little")
        if len(head) < _PREAMBLE or _PREAMBLE + header_nbytes > size:
            raise ValueError(f"{path} is truncated: its header needs "
                             f"{_PREAMBLE + header_nbytes:,} bytes but the file has {size:,}.")
        text = file.read(header_nbytes)
        if hashlib.sha256(text).digest() != head[16:48]:
            raise ValueError(f"{path}: the header is corrupted (its sha256 does not match).")
        padding = file.read(_aligned(_PREAMBLE + header_nbytes) - _PREAMBLE - header_nbytes)
    header = _parse_header(text, path)
    data_start = _aligned(_PREAMBLE + header_nbytes)
    table = _check_table(header, path)
    declared = data_start + header["data_nbytes"]
    if size < declared:
        cut = next((entry["name"] for entry in table  # (an empty array is never cut)
                    if entry["nbytes"] and data_start + entry["offset"] + entry["nbytes"] > size),
                   None)
        raise ValueError(f"{path} is truncated: its header declares {declared:,} bytes but the "
                         f"file has {size:,}" + (f"; array {cut!r} is cut short." if cut else "."))
    if size > declared:
        raise ValueError(f"{path} is larger than its header declares: {size:,} bytes, "
                         f"{size - declared:,} of them after the last array.")
    if any(padding):
        raise ValueError(f"{path}: the bytes between the header and the arrays are not zero.")
    if mmap and size > data_start:
        data = np.memmap(path, dtype=np.uint8, mode="c", offset=data_start).view(np.ndarray)
    else:
        data = np.empty(size - data_start, dtype=np.uint8)
        with open(path, "rb") as file:
            file.seek(data_start)
            file.readinto(memoryview(data))
    return header, _verified_arrays(table, data, path), size


def _check_signature(head, path):
    if head[:len(MAGIC)] == MAGIC:
        return
    if len(head) < len(MAGIC) and MAGIC.startswith(head) and head:
        raise ValueError(f"{path} is truncated: it has {len(head)} bytes.")
    for start, what in _OTHER_FORMATS:
        if head.startswith(start):
            raise ValueError(f"{path} is {what}, not a nearkit model file.")
    raise ValueError(f"{path} is not a nearkit model file (it does not start with the "
                     "nearkit signature; write model files with nearkit.save).")


def _parse_header(text, path):
    def refuse(constant):
        raise ValueError(f"{path}: the header holds {constant}, which JSON does not allow.")

    try:
        header = json.loads(text.decode("ascii"), parse_constant=refuse)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: the header is not valid JSON ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: the header does not describe a nearkit model "
                         f"(format {header.get('format') if isinstance(header, dict) else None!r}).")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version!r}; this nearkit reads format "
                         f"version {FORMAT_VERSION} (a newer nearkit wrote it?).")
    return header


def _check_table(header, path):
    """The header's array table, checked: every entry well formed, its shape matching its
    byte count, the arrays in order at aligned offsets without overlap."""
    table = header.get("arrays")
    if not isinstance(table, list) or type(header.get("data_nbytes")) is not int:
        raise ValueError(f"{path}: the header has no valid array table.")
    end, names = 0, set()
    for entry in table:
        name = entry.get("name") if isinstance(entry, dict) else None
        if (not isinstance(name, str) or name in names
                or not isinstance(entry.get("dtype"), str) or not _DTYPE.match(entry["dtype"])
                or not isinstance(entry.get("shape"), list)
                or not all(type(n) is int and n >= 0 for n in entry["shape"])
                or not all(type(entry.get(key)) is int for key in ("offset", "nbytes"))
                or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256")))):
            raise ValueError(f"{path}: the header's entry for array {name!r} is malformed "
                             "(or repeated).")
        names.add(name)
        needed = math.prod(entry["shape"]) * np.dtype(entry["dtype"]).itemsize
        if needed != entry["nbytes"]:
            raise ValueError(
                f"{path}: array {name!r} has shape {tuple(entry['shape'])} and dtype "
                f"{entry['dtype']} in the header, which is {needed:,} bytes, but "
                f"{entry['nbytes']:,} bytes are stored for it.")
        if entry["offset"] != _aligned(end):
            raise ValueError(f"{path}: array {name!r} is not where the header's layout puts "
                             f"it (offset {entry['offset']:,}, expected {_aligned(end):,}).")
        end = entry["offset"] + entry["nbytes"]
    if header["data_nbytes"] != end:
        raise ValueError(f"{path}: the header's data length ({header['data_nbytes']:,}) is "
                         f"not where its last array ends ({end:,}).")
    return table


def _verified_arrays(table, data, path):
    arrays, end = {}, 0
    for entry in table:
        start, stop = entry["offset"], entry["offset"] + entry["nbytes"]
        if data[end:start].any():
            raise ValueError(f"{path}: the bytes before array {entry['name']!r} are not zero.")
        raw = data[start:stop]
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise ValueError(f"{path}: array {entry['name']!r} is corrupted (its sha256 does "
                             "not match the header's).")
        arrays[entry["name"]] = raw.view(np.dtype(entry["dtype"])).reshape(entry["shape"])
        end = stop
    return arrays
