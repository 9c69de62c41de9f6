"""Hostile inputs of a shared classroom server, each defined once: tests/test_abuse.py checks
each in detail, tests/test_abuse_table.py runs them all in one table. Bombs are small on disk
(zeros compress about 1000:1) and never held expanded in memory. `measure`: one call in a
forked child, with its outcome, peak memory (the child's maximum resident set) and time."""
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


# --- the inputs both abuse test files use --------------------------------------------------
ABSOLUTE_PATHS = ("/etc", "/no/such/folder")  # typed into the app: a server folder, a missing one
DOTDOT_PATH = "../../etc"
ESCAPE_LINK = "escape/passwd"  # through data_root's link to /etc
SERVER_NAMES = ("PackageKit", "X11")  # in /etc: a listing of it would show them
PLANTED = ("1.25", "hunter2", "secret", "![x]", "HOST")  # inside planted_csvs: never quoted
MARKDOWN = ("![x](http://HOST/t.png) [Click here](https://evil.example) <b>x</b> $x^2$ "
            ":red[boo] **bold** www.evil.example")
REPEATED_KEY = {"pg_alpha": ["2.5", "4"], "pg_delta": ["0.2"]}  # a URL query, alpha twice
HEADERLESS_UPLOAD = ("my data.csv", b"1.25,hunter2\n3,4\n")  # (name, bytes)


def huge_png_zip(folder: Path, side: int = 13_000) -> Path:
    """An image zip holding a side x side PNG of zeros (13,000: 169 MP, which PIL only warns about)."""
    return image_zip(folder / f"huge_png_{side}.zip", {"set/cats/huge.png": png_claiming(side, side)})


def zeros_npz(folder: Path) -> Path:
    """1 GiB of float64 zeros promised by the header, over 64 bytes of data."""
    return npz_claiming(folder / "zeros.npz", (2**27, 1), data_bytes=64)


def forged_npz(folder: Path) -> Path:
    return npz_claiming(folder / "forged.npz", (2**40, 4), data_bytes=64)


def big_entry_zip(folder: Path) -> Path:
    """One 65 MiB entry (over the 64 MiB per-file limit) among small images."""
    return image_zip(folder / "big_entry.zip", {"set/dogs/big.png": bytes(65 * 2**20)})


def renamed_npy(folder: Path) -> Path:
    np.save(folder / "x.npy", np.zeros((4, 2)))
    return (folder / "x.npy").rename(folder / "x.npz")


def overflow_npz(folder: Path) -> Path:
    """Finite in float64, one value inf in float32."""
    X = np.ones((8, 2))
    X[3, 1] = 1e300
    return features_npz(folder / "overflow.npz", X, np.arange(8) % 4)


def one_per_class_npz(folder: Path) -> Path:
    """One sample per class: no recall can be measured on it."""
    return features_npz(folder / "one_each.npz", np.eye(6), np.arange(6))


def planted_csvs(folder: Path) -> dict[str, Path]:
    """Tables whose content (PLANTED) a message must not quote: a headerless one (its first
    row is data), one of words, one with a Markdown header."""
    texts = {"headerless.csv": "1.25,hunter2,0\n3.75,4.5,1\n",
             "words.csv": "secret,label\nhunter2,0\nswordfish,1\n",
             "header.csv": "![x](http://HOST/t.png),b\n1,2\n"}
    for name, text in texts.items():
        (folder / name).write_text(text)
    return {name: folder / name for name in texts}


def data_root(folder: Path) -> Path:
    """A data root holding an image folder `pets` and `escape`, a link to /etc."""
    root = folder / "root"
    image_folder(root / "pets")
    (root / "escape").symlink_to("/etc")
    return root


def uploads_folder(folder: Path) -> Path:
    from pfml_core.data import UPLOADS

    path = folder / "runs" / UPLOADS
    path.mkdir(parents=True)
    return path


def loss_on_empty_batch() -> str:
    import torch

    from pfml_core.physics import PotentialFieldLoss

    loss = PotentialFieldLoss(num_classes=3, embedding_size=4, proxies_per_class=2)
    return str(loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))


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
