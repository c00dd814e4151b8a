"""numba's runtime (NRT) functions, kept compiled in the disk cache beside the kernels.

Loaded kernel code calls a few functions numba compiles with LLVM in every process before
its first kernel runs (``NRT_incref``, ``NRT_decref``, the atomic counters and their
kin: ``numba.core.runtime.nrtdynmod.compile_nrt_functions``).  That compile took 29-46 ms
of a new process's first search on an AMD EPYC (three processes; about a third of a kernel
path's load from the disk cache), where loading the same functions as object code takes
about 2 ms.  :func:`initialize` compiles them once into numba's cache folder of the kernels,
in numba's own serialised form (object code and the bitcode later compiles link against,
what numba's cache stores for every kernel) and loads them from there afterwards.

The file is keyed by numba's and llvmlite's versions and by the code generator's
``magic_tuple`` (target triple, CPU name and features: what numba's cache keys compiled
kernels by), and carries a SHA-256 of its contents: a file written for another machine or
version, or damaged, is ignored and rewritten.  Any failure compiles as numba does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile

#: the file's name, in numba's cache folder of the kernels
FILE_NAME = "nearkit-nrt.bin"
#: where this process's runtime functions came from: None until :func:`initialize`
#: replaced numba's compile, then 'cache' (loaded from the file) or 'compiled'
source = None


def initialize(target_context, folder):
    """Initialise numba's runtime (what ``rtsys.initialize(target_context)`` does, idempotent)
    with its functions loaded from, or compiled into, the cache file in ``folder`` (None:
    numba's compile, no file).  Call under numba's compiler lock."""
    from numba.core.runtime import nrtdynmod, rtsys

    original = getattr(nrtdynmod, "compile_nrt_functions", None)
    if folder is None or original is None or getattr(rtsys, "_init", True):
        rtsys.initialize(target_context)
        return
    nrtdynmod.compile_nrt_functions = lambda ctx: _library(ctx, nrtdynmod, original, folder)
    try:
        rtsys.initialize(target_context)
    finally:
        nrtdynmod.compile_nrt_functions = original


def _library(ctx, nrtdynmod, original, folder):
    """The runtime's library: loaded from the cache file, else compiled (and saved)."""
    global source

    try:
        codegen = ctx.codegen()
        key = _key(codegen)
    except Exception:  # noqa: BLE001 - numba internals changed: its own compile
        return original(ctx)
    path = os.path.join(folder, FILE_NAME)
    state = _read(path, key)
    if state is not None:
        try:
            library = codegen.unserialize_library(state)
        except Exception:  # noqa: BLE001 - unusable: compiled (and rewritten) below
            pass
        else:
            source = "cache"
            return library
    try:
        ir_module, library = nrtdynmod.create_nrt_module(ctx)
        library.enable_object_caching()
        library.add_ir_module(ir_module)
        library.finalize()
        state = library.serialize_using_object_code()
    except Exception:  # noqa: BLE001 - numba internals changed: its own compile
        return original(ctx)
    _write(path, key, state)
    source = "compiled"
    return library


def _key(codegen):
    import llvmlite
    import numba

    return [numba.__version__, llvmlite.__version__, [str(part) for part in
                                                       codegen.magic_tuple()]]


def _read(path, key):
    """numba's serialised library state ``(name, 'object', (object code, bitcode))`` from
    the file at ``path``, or None when it is missing, for another key, or damaged."""
    try:
        with open(path, "rb") as file:
            header = json.loads(file.readline())
            body = file.read()
        if header["key"] != key or hashlib.sha256(body).hexdigest() != header["sha256"]:
            return None
        size = int(header["object_size"])
        if not 0 < size < len(body):
            return None
        return (str(header["name"]), "object", (body[:size], body[size:]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path, key, state):
    """Write the file atomically (a file beside it, then renamed over it: a reader sees
    the old file or the new one, never half of one); a failure leaves it unwritten."""
    name, kind, (object_code, bitcode) = state
    if kind != "object":
        return
    body = bytes(object_code) + bytes(bitcode)
    header = {"key": key, "name": name, "object_size": len(object_code),
              "sha256": hashlib.sha256(body).hexdigest()}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".nearkit-nrt-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as file:
            if hasattr(os, "fchmod"):  # (mkstemp's 0o600 hides it from a shared cache's users)
                os.fchmod(file.fileno(), 0o644)
            file.write(json.dumps(header).encode() + b"\n" + body)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
