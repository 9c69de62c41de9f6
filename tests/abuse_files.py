"""Hostile inputs for tests/test_abuse.py and bench/abuse.py, made small on disk (zeros
compress about 1000:1) without ever holding their expanded size in memory, and `measure`:
one call in a forked child, with its outcome, peak memory (the child's own maximum
resident set, from wait4) and time."""
from __future__ import annotations

import io
import json
import os
import resource
import sqlite3
import struct
import time
import traceback
import zipfile
import zlib
from pathlib import Path

import numpy as np

GIB = 2**30
CHUNK = 1 << 22  # bytes of zeros fed to zlib at a time


def _zeros_deflated(comp, n_bytes: int, unit: bytes = b"\0") -> list[bytes]:
    block, out = unit * max(1, CHUNK // len(unit)), []
    while n_bytes > 0:
        take = min(n_bytes, len(block))
        out.append(comp.compress(block[:take]))
        n_bytes -= take
    return out


def png_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """A grayscale PNG whose header says width x height, holding `rows` rows of zeros: a
    forged header, as small as a bomb's, that a reader must refuse before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    idat = b"".join(_zeros_deflated(comp, (width + 1) * min(rows, height))) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_png(seed: int, size: int = 12) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def image_zip(path: Path, big: dict[str, bytes] | None = None, per_class: int = 3) -> Path:
    """A zip of an image folder (two classes of small images) plus `big` entries."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for c in ("cats", "dogs"):
            for i in range(per_class):
                zf.writestr(f"set/{c}/{i}.png", small_png(i + 10 * (c == "dogs")))
        for name, raw in (big or {}).items():
            zf.writestr(name, raw)
    return path


def image_folder(root: Path, per_class: int = 3) -> Path:
    for c in ("cats", "dogs"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(small_png(i + 10 * (c == "dogs")))
    return root


def npz_claiming(path: Path, shape: tuple, data_bytes: int | None = None,
                 dtype: str = "<f8") -> Path:
    """An .npz whose X.npy header says `shape`, followed by data_bytes zero bytes (default:
    all the header promises, deflated), and a small y."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(shape)}
    promised = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    y = io.BytesIO()
    np.save(y, np.arange(8) % 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            left = promised if data_bytes is None else data_bytes
            while left > 0:  # zipfile compresses; write zeros in blocks
                take = min(left, CHUNK)
                f.write(bytes(take))
                left -= take
        zf.writestr("y.npy", y.getvalue())
    return path


def features_npz(path: Path, X, y) -> Path:
    np.savez(path, X=np.asarray(X), y=np.asarray(y))
    return path


def damaged_store(path: Path, how: str = "garbage") -> Path:
    """A lab.sqlite made unreadable: 'garbage' (overwritten) or 'truncated' (cut short)."""
    if how == "garbage":
        path.write_bytes(b"this is not a database " * 200)
        return path
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 400)
    conn.commit()
    conn.close()
    raw = path.read_bytes()
    path.write_bytes(raw[:100] + bytes(4096) + raw[4196:len(raw) // 2])
    return path


def measure(fn, *args, address_limit: int = 6 * GIB) -> dict:
    """fn(*args) in a forked child (address space capped as a safety net): outcome 'ok'
    (value: what fn returned, as text), 'refused' (a ValueError: its message) or 'crash'
    (any other exception, or the child died); peak_mib (the child's maximum resident set,
    which includes what it shares with this process), seconds."""
    read, write = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (address_limit, address_limit))
            try:
                result = {"outcome": "ok", "message": str(fn(*args))[:500]}
            except ValueError as e:
                result = {"outcome": "refused", "message": str(e)}
            except BaseException as e:  # noqa: BLE001
                result = {"outcome": "crash", "message": f"{type(e).__name__}: {e}"[:300],
                          "traceback": traceback.format_exc()[-2000:]}
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        raw = f.read()
    _, status, usage = os.wait4(pid, 0)
    result = json.loads(raw) if raw else {"outcome": "crash", "message": f"child died ({status})"}
    result["peak_mib"] = usage.ru_maxrss / 1024
    result["seconds"] = time.perf_counter() - t0
    return result
