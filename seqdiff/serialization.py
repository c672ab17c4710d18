"""Model and checkpoint files that cannot carry code.

A seqdiff model file (``model.pt``, the shipped ``seqdiff/pretrained/*.pt``) and a training
checkpoint (``last.ckpt``, ``best.ckpt``) are ``torch.save`` zip archives whose pickle holds only
tensors and plain data: dicts, lists, tuples, strings, numbers, booleans and ``None``. Opening one
never unpickles anything else:

1. the archive's pickle is read opcode by opcode, without executing it, and every class or function
   it names must be one of :data:`ALLOWED_GLOBALS` (the tensor-rebuilding helpers of ``torch`` and
   ``collections.OrderedDict``); a file naming anything else (``os.system``, ``builtins.eval``, a
   class of some package) is refused with :class:`UnsafeModelError` before any of it is unpickled;
2. the pickle is then loaded with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler,
   as a second line of defence;
3. the result must be plain data (:func:`check_plain`).

Files in the old (pre-1.6) torch format or plain pickles are not zip archives and are refused too.
:func:`convert_model` rewrites a model file or a training checkpoint written by an older seqdiff into
the current format (also ``seqdiff convert``); it reads the source through the same checks.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import pickletools
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from .atomic import write_atomic

__all__ = ["storage_state", "write_atomic", "ModelLoadError", "UnsafeModelError", "ALLOWED_GLOBALS", "scan_file", "safe_load", "check_plain",
           "save_atomic", "convert_model", "fsync_dir"]

_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")

#: The only globals a seqdiff model or checkpoint pickle may name: how torch rebuilds tensors and
#: parameters, its typed storages, and ``OrderedDict`` (a state dict).
ALLOWED_GLOBALS = frozenset(
    {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
     "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
    | {f"torch.{k}Storage" for k in _STORAGES})

# opcodes that name or build objects by a global; everything else only builds plain data
_GLOBAL_OPS = {"GLOBAL", "INST"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}
_FORBIDDEN_OPS = {"EXT1", "EXT2", "EXT4"}  # the copyreg extension registry: globals by number


class ModelLoadError(ValueError):
    """A file that is not a seqdiff model or checkpoint."""


class UnsafeModelError(ModelLoadError):
    """A file that would import or run code when opened: refused, nothing in it was run."""


def _refuse(path: Path, what: str) -> UnsafeModelError:
    return UnsafeModelError(f"{path}: refused: the file asks to import {what}, which a seqdiff model never "
                            f"contains (model files hold only tensors and plain data); it was not opened, "
                            f"nothing in it ran")


def _pickle_globals(data: bytes) -> list[str]:
    """Every ``module.name`` the pickle ``data`` would import, read without executing it."""
    found: list[str] = []
    strings: list[str] = []  # recent string pushes, for STACK_GLOBAL
    memo: dict[int, Any] = {}
    last: Any = None
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in _FORBIDDEN_OPS:
                found.append(f"<extension code {arg}>")
            elif name in _GLOBAL_OPS:
                mod, _, attr = str(arg).partition(" ")
                found.append(f"{mod}.{attr}")
            elif name == "STACK_GLOBAL":
                if len(strings) < 2:
                    found.append("<a global whose name is computed>")
                else:
                    found.append(f"{strings[-2]}.{strings[-1]}")
            if name in _STRING_OPS:
                last = str(arg)
                strings.append(last)
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = last
            elif name == "MEMOIZE":
                memo[len(memo)] = last
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(int(arg))
                if isinstance(last, str):
                    strings.append(last)
            else:
                last = None
    except (ValueError, KeyError, TypeError, IndexError, EOFError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"damaged pickle ({e})") from None
    return found


def scan_file(path: str | os.PathLike) -> None:
    """Refuse ``path`` unless it is a torch zip archive whose pickle names only :data:`ALLOWED_GLOBALS`.

    Raises :class:`UnsafeModelError` (code inside) or :class:`ModelLoadError` (not such an archive).
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (not a torch archive)")
            info = z.getinfo(names[0])
            # torch writes its records uncompressed; a compressed or huge pickle is not torch's (or a zip bomb)
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > _MAX_PICKLE_BYTES:
                raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (its pickle is compressed or "
                                     f"{info.file_size} bytes: not written by torch.save)")
            data = z.read(names[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as e:
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (not a torch zip archive: damaged, "
                             f"truncated, or another kind of file; {e})") from None
    except (OSError, RuntimeError) as e:
        raise ModelLoadError(f"{p}: cannot read it ({e})") from None
    try:
        globs = _pickle_globals(data)
    except ModelLoadError as e:
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint ({e})") from None
    bad = [g for g in globs if g not in ALLOWED_GLOBALS]
    if bad:
        raise _refuse(p, ", ".join(dict.fromkeys(bad)))


_PLAIN = (str, int, float, bool, type(None), torch.Tensor)
_MAX_PICKLE_BYTES = 1 << 30  # the pickle holds the structure, not the weights: megabytes at most


def check_plain(obj: Any, where: str = "") -> None:
    """Raise ``TypeError`` unless ``obj`` is tensors and plain data only (dict keys: str or int)."""
    stack = [(obj, where or "top level")]
    while stack:
        o, at = stack.pop()
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, (str, int)):
                    raise TypeError(f"{at}: a key of type {type(k).__name__}")
                stack.append((v, f"{at}.{k}"))
        elif isinstance(o, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(o))
        elif not isinstance(o, _PLAIN):
            raise TypeError(f"{at}: a value of type {type(o).__name__}")


def safe_load(path: str | os.PathLike) -> dict:
    """The dict stored in a seqdiff model or checkpoint file, on the CPU, opened safely (module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"{p}: no such model file")
    scan_file(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # the scan above lets nothing through that torch's restricted unpickler refuses; kept as a backstop
        raise UnsafeModelError(f"{p}: refused by the restricted unpickler, nothing in it ran "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - a damaged archive: one clear message
        first = str(e).splitlines()[0] if str(e) else ""
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (damaged or truncated: "
                             f"{type(e).__name__}: {first})") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (it holds a {type(obj).__name__}, not a dict)")
    try:
        check_plain(obj)
    except TypeError as e:
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint ({e})") from None
    return obj


def storage_state(state: dict[str, Any], dtype: Any = None) -> dict[str, Any]:
    """A state dict as a file stores it: detached CPU copies, floating tensors in ``dtype`` when given
    (e.g. ``torch.bfloat16``: half the size; the loaders cast them back to float32)."""
    def one(v):
        v = v.detach().cpu()
        return v.to(dtype) if dtype is not None and v.is_floating_point() else v.clone()
    return {k: one(v) for k, v in state.items()}


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _open_for_write(path: Path) -> io.BufferedWriter:
    """Open a temporary file for writing (a separate function so tests can simulate a full disk)."""
    return open(path, "wb")


def save_atomic(obj: dict, path: str | os.PathLike, *, keep_previous: bool = False,
                verify: Callable[[dict], None] | None = None, mode: int = 0o644) -> Path:
    """Write ``obj`` with ``torch.save`` to a temporary file beside ``path``, flush it to disk, read it
    back through :func:`safe_load` (and ``verify``), and only then rename it over ``path``.

    ``keep_previous``: the file it replaces is kept as ``<stem>.prev<suffix>`` (the newest two survive).
    On any failure (a full disk, a kill) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_plain(obj)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _open_for_write(tmp) as f:
            try:
                torch.save(obj, f)  # a file object: the archive's inner folder is named "archive"
            except RuntimeError as e:
                # torch's zip writer reports a failed write (a full disk) as a RuntimeError: the OSError
                # it was handling is the real cause
                if isinstance(e.__context__, OSError):
                    raise e.__context__ from None
                raise
            f.flush()
            os.fsync(f.fileno())
        back = safe_load(tmp)
        if verify is not None:
            verify(back)
        del back
        os.chmod(tmp, mode)
        if keep_previous and path.is_file():
            _keep_as_previous(path)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _keep_as_previous(path: Path) -> None:
    """Make ``<stem>.prev<suffix>`` the current ``path`` while ``path`` itself stays in place (a hard
    link, renamed over the old previous one), so that a kill at any moment leaves a ``path``."""
    prev = previous_path(path)
    link = prev.with_name(f".{prev.name}.{os.getpid()}.link.tmp")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, prev)
    except OSError:  # no hard links on this file system: rename (a kill right after leaves only .prev)
        link.unlink(missing_ok=True)
        os.replace(path, prev)


def previous_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_atomic` keeps the file it replaced: ``last.ckpt`` -> ``last.prev.ckpt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def _plain_copy(obj: Any) -> Any:
    """A plain-data copy: numpy scalars and arrays, paths and other simple leaves become plain values."""
    import numpy as np
    if isinstance(obj, dict):
        return {(k if isinstance(k, (str, int)) else str(k)): _plain_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_copy(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, np.ndarray):
        return obj.tolist()  # numbers in the plain data (weights are tensors already)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, _PLAIN):
        return obj
    raise TypeError(f"a value of type {type(obj).__name__}")


# numpy leaves old files may carry (numbers in a config, a length histogram as an array)
def _numpy_globals() -> list:
    import numpy as np
    out: list = [np.dtype, np.ndarray]
    with contextlib.suppress(Exception):
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[attr-defined]
        out += [_reconstruct, scalar]
    with contextlib.suppress(Exception):
        from numpy._core.multiarray import _reconstruct as r2, scalar as s2  # type: ignore
        out += [r2, s2]
    for t in ("Int64DType", "Float64DType", "Int32DType", "Float32DType", "BoolDType"):
        if hasattr(np.dtypes, t):
            out.append(getattr(np.dtypes, t))
    return out


_CONVERT_EXTRA = {"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                  "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "numpy.ndarray",
                  "numpy.dtypes.Int64DType", "numpy.dtypes.Float64DType", "numpy.dtypes.Int32DType",
                  "numpy.dtypes.Float32DType", "numpy.dtypes.BoolDType", "pathlib.PosixPath", "pathlib.WindowsPath",
                  "pathlib.Path", "collections.OrderedDict", "builtins.set", "_codecs.encode"}


def _load_for_convert(p: Path) -> dict:
    """Load a file of an older seqdiff: the current checks, plus numpy leaves and paths (plain data too)."""
    import pathlib
    try:
        return safe_load(p)
    except UnsafeModelError:
        pass  # maybe only numpy/path leaves: check precisely below
    with zipfile.ZipFile(p) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    bad = [g for g in _pickle_globals(data) if g not in ALLOWED_GLOBALS | _CONVERT_EXTRA]
    if bad:
        raise _refuse(p, ", ".join(dict.fromkeys(bad)))
    with torch.serialization.safe_globals(_numpy_globals() + [pathlib.PosixPath, pathlib.WindowsPath, set]):
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise UnsafeModelError(f"{p}: refused by the restricted unpickler, nothing in it ran ({e})") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint")
    return obj


def convert_model(src: str | os.PathLike, dst: str | os.PathLike | None = None) -> Path:
    """Rewrite a model file or a training checkpoint as an exported model file in the current format.

    ``dst`` defaults to ``src`` (replaced atomically). The source is read without running anything in it
    (a file that names code is refused); numpy numbers and arrays and paths in an older file become plain
    values; a Lightning checkpoint becomes an exported model (its EMA weights when it has them). The
    result is built into a :class:`~seqdiff.model.SeqDiffModel` and checked to give the same weights
    before it is written. Returns the path written.
    """
    from .model import SeqDiffModel, model_from_dict

    p = Path(src)
    if not p.is_file():
        raise ModelLoadError(f"{p}: no such model file")
    try:
        obj = _plain_copy(_load_for_convert(p))
    except TypeError as e:
        raise ModelLoadError(f"{p}: cannot convert: {e}") from None
    model: SeqDiffModel = model_from_dict(obj, p)
    # keep the precision the weights were stored in (a bf16 export stays bf16)
    src_state = obj.get("state_dict") if isinstance(obj.get("state_dict"), dict) else {}
    dtypes = {v.dtype for v in src_state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()}
    dtype = dtypes.pop() if len(dtypes) == 1 and torch.float32 not in dtypes else None
    out = model.export_dict(dtype) if dtype is not None else model.export_dict()
    out_path = Path(dst) if dst is not None else p
    want = {k: v.clone() for k, v in model.state_dict().items()}

    def same(back: dict) -> None:
        got = model_from_dict(back, out_path).state_dict()
        if got.keys() != want.keys() or any(not torch.equal(got[k], want[k]) for k in want):
            raise ModelLoadError(f"{out_path}: the converted file does not reproduce the weights")

    return save_atomic(out, out_path, verify=same)
