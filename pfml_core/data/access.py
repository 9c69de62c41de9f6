"""Which datasets a visitor of the app may open (`resolve_dataset_ref`), and the uploads the
app keeps (`store_upload`, PFML_UPLOAD_TTL_HOURS, PFML_MAX_UPLOADS_MB). Messages never show an
absolute server path or anything inside a file. The command line's --data is not restricted:
it is the operator's own shell."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from pfml_core import guards
from pfml_core.data import faults
from pfml_core.data.bundled import BUNDLED
from pfml_core.data.user_files import MAX_BYTES, load_path

DATA_ROOT_ENV = "PFML_DATA_ROOT"
TTL_ENV = "PFML_UPLOAD_TTL_HOURS"
QUOTA_ENV = "PFML_MAX_UPLOADS_MB"
UPLOADS_MB = 1024  # all uploads together; a classroom's few datasets fit many times over
UPLOAD_TTL_HOURS = 24.0  # an upload unused this long is deleted when the next one is stored
UPLOADS = "_uploads"  # the uploads folder, inside runs_dir()
UPLOAD_SUFFIXES = (".npz", ".csv", ".zip")
STORED_NAME = re.compile(r"[0-9a-f]{16}\.(?:npz|csv|zip)")
_CHECKING = ".checking-"  # prefix of the folder an upload is validated in


def data_root() -> Path | None:
    """The operator's data root (PFML_DATA_ROOT), or None when paths are off (the default)."""
    raw = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def upload_ttl_hours() -> float:
    """Hours an upload may go unused before it is deleted: PFML_UPLOAD_TTL_HOURS, default
    UPLOAD_TTL_HOURS (24)."""
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        ttl = float(raw) if raw else UPLOAD_TTL_HOURS
    except ValueError:
        ttl = float("nan")
    if not ttl > 0:
        raise ValueError(f"{TTL_ENV} must be a positive number of hours, got {raw!r}")
    return ttl


def uploads_quota_mb() -> int:
    """MB all uploads together may take: PFML_MAX_UPLOADS_MB, default UPLOADS_MB (1024)."""
    return guards.env_count(QUOTA_ENV, UPLOADS_MB)


def _shown(ref: str) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in ref)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def resolve_dataset_ref(ref: str, uploads_dir: Path, data_root: Path | None = None) -> str:
    """What load_dataset should open for the app's dataset reference `ref`: a bundled name
    (BUNDLED); an upload's stored name (e.g. `3fa2c1d0e9b8a7f6.npz`, the hash of its content,
    kept in runs_dir()/_uploads; resolving one counts as using it); or a path relative to the
    operator's data root (PFML_DATA_ROOT, off by default), resolved (links too) and refused
    when it leads outside the root. ValueError for anything else, without saying what exists
    on the server."""
    ref = str(ref).strip()
    if ref in BUNDLED:
        return ref
    if not ref:
        raise ValueError("no dataset given: pick a bundled one, or give an upload's stored "
                         "name or a path under the data root")
    if STORED_NAME.fullmatch(ref):
        path = Path(uploads_dir) / ref
        if not path.is_file():
            raise ValueError(f"no upload named {ref} is kept (uploads are deleted after "
                             f"{upload_ttl_hours():g} hours unused): upload the file again")
        os.utime(path)  # in use: its age starts again
        return str(path.resolve())
    pure = PurePosixPath(ref.replace("\\", "/"))
    if pure.is_absolute() or ref.startswith("~") or re.match(r"[A-Za-z]:", ref) \
            or not ref.isprintable():
        raise ValueError("the app opens bundled datasets, uploads and paths relative to the "
                         "data root only; absolute paths are not allowed")
    if ".." in pure.parts:
        raise ValueError("'..' is not allowed in a dataset path")
    if data_root is None:
        raise ValueError(f"{_shown(ref)} is neither a bundled dataset nor an upload's stored "
                         f"name, and this server opens no other paths (the operator can set "
                         f"{DATA_ROOT_ENV})")
    try:
        root = Path(data_root).expanduser().resolve(strict=True)
    except OSError:
        raise ValueError(f"the data root the operator set ({DATA_ROOT_ENV}) does not exist") from None
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{_shown(ref)} leads outside the data root (through a link); "
                         "not allowed")
    if not target.exists():
        raise ValueError(f"{_shown(ref)}: no such file or folder under the data root")
    return str(target)


def _probe_name(name: str, suffix: str) -> str:
    """The upload's own base name, tamed, so validation messages name the user's file."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(str(name).replace("\\", "/")).stem)
    return (stem.strip("._")[:60] or "upload") + suffix


def store_upload(name: str, raw: bytes, folder: Path, max_bytes: int = MAX_BYTES) -> Path:
    """Check uploaded bytes (opened as a dataset in a private folder), then keep them under
    a content-hash name (so reruns reuse it) and expire old uploads; returns the path.
    The upload is opened as a dataset (every check of pfml_core.data) before it is stored;
    all uploads together stay within uploads_quota_mb(), checked under a lock in the folder,
    so every server sharing it counts. Bad input -> ValueError naming the upload by its base
    name; nothing is kept."""
    suffix = Path(str(name)).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{_probe_name(name, suffix)}: upload a .npz, a .csv or a .zip of "
                         "an image folder")
    if len(raw) > max_bytes:
        raise ValueError(f"{_probe_name(name, suffix)} is {len(raw) / 2**20:.1f} MiB, over the "
                         f"{max_bytes / 2**20:.0f} MiB limit")
    folder = Path(folder)
    with faults.said("the upload could not be stored"):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha1(raw).hexdigest()[:16]}{suffix}"
        if path.is_file():  # stored before, so checked before
            os.utime(path)
            return path
        with _locked(folder):  # the quota is checked and the bytes written by one at a time
            expire_uploads(folder)
            _check_quota(folder, len(raw), _probe_name(name, suffix))
            tmp = tempfile.mkdtemp(prefix=_CHECKING, dir=folder)
            probe = Path(tmp) / _probe_name(name, suffix)
            try:
                probe.write_bytes(raw)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    try:  # outside the lock (a zip takes seconds to check); the folder counts meanwhile
        load_path(probe, max_bytes=max_bytes)
        with faults.said("the upload could not be stored"):
            os.replace(probe, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


@contextlib.contextmanager
def exclusive(lock_file: Path):
    """Hold an exclusive flock on `lock_file` (created if missing) across processes; where
    there is no fcntl (not POSIX), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        fcntl = None
    with open(lock_file, "a") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _locked(folder: Path):
    return exclusive(folder.parent / f".{folder.name}.lock")  # beside: the folder holds uploads only


def uploads_bytes(folder: Path) -> int:
    """Bytes the uploads folder holds: stored uploads and uploads being checked."""
    total = 0
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        with contextlib.suppress(OSError):  # expired or moved meanwhile
            if STORED_NAME.fullmatch(entry.name):
                total += entry.lstat().st_size
            elif entry.name.startswith(_CHECKING) and entry.is_dir():
                total += sum(p.lstat().st_size for p in entry.iterdir())
    return total


def _check_quota(folder: Path, size: int, shown: str) -> None:
    quota, used = uploads_quota_mb() * 2**20, uploads_bytes(folder)
    if used + size > quota:
        raise ValueError(f"{shown} ({size / 2**20:.1f} MB) does not fit: the server keeps at most "
                         f"{quota / 2**20:,.0f} MB of uploads ({QUOTA_ENV}) and holds "
                         f"{used / 2**20:,.1f} MB; uploads unused for {upload_ttl_hours():g} "
                         "hours are deleted, so try again later")


def expire_uploads(folder: Path, max_age_hours: float | None = None) -> int:
    """Delete the stored uploads (and leftover check folders) unused for longer than
    max_age_hours (default upload_ttl_hours()); returns how many were deleted."""
    cutoff = time.time() - 3600 * (max_age_hours or upload_ttl_hours())
    removed = 0
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        stored, checking = STORED_NAME.fullmatch(entry.name), entry.name.startswith(_CHECKING)
        try:
            if (stored or checking) and entry.lstat().st_mtime < cutoff:
                shutil.rmtree(entry) if checking and entry.is_dir() else entry.unlink()
                removed += 1
        except FileNotFoundError:  # another session expired it first
            continue
    return removed
