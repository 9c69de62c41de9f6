"""How far a user file may expand in memory: a 1 MB .zip can decompress to gigabytes, so every
reader checks the size a file announces (zip directory, .npy header, image header) before reading
it and refuses with a ValueError that names the limit. The defaults below suit a shared classroom
server; an operator raises one with the environment variable PFML_<NAME> (a positive number)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

MAX_FILE_MB = 64  # PFML_MAX_FILE_MB: one image file or zip entry, uncompressed
MAX_DECODED_MB = 256  # PFML_MAX_DECODED_MB: all a file expands to together (every zip entry,
#                       every .npz array, the parsed CSV, the decoded images)
MAX_IMAGE_MEGAPIXELS = 50  # PFML_MAX_IMAGE_MEGAPIXELS: one image, width x height (PIL itself
#                            refuses past about 179 megapixels)
MAX_TOTAL_MEGAPIXELS = 2000  # PFML_MAX_TOTAL_MEGAPIXELS: all images of a set (decoding time)
MAX_ZIP_ENTRIES = 100_000  # PFML_MAX_ZIP_ENTRIES: entries in a .zip / .npz directory
MAX_CSV_COLUMNS = 10_000  # PFML_MAX_CSV_COLUMNS: columns of a CSV, counted in its header line
#                           before parsing (a parser's cost grows with them)
MIB = 2**20


class LimitError(ValueError):
    """A file that would expand past a limit (a ValueError the readers let through as is)."""


def limit(name: str) -> float:
    """The limit `name` (e.g. "MAX_DECODED_MB"): PFML_<name> when set, else the default."""
    raw = os.environ.get(f"PFML_{name}")
    if raw is None or not raw.strip():
        return float(globals()[name])
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"PFML_{name} must be a positive number, got {raw!r}")
    return value


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB" if n >= MIB else f"{n / MIB:.2f} MiB"


def check_bytes(n: int, name: str, what: str, key: str = "MAX_DECODED_MB") -> None:
    """`what` of file `name` would take n bytes: refuse above the limit `key` (in MiB)."""
    cap = limit(key) * MIB
    if n > cap:
        raise LimitError(f"{name}: {what} would take {_mib(n)}, over the {_mib(cap)} limit "
                         f"(the operator can raise it with PFML_{key})")


def check_entries(sizes: list[tuple[str, int]], source: str) -> None:
    """(entry name, uncompressed bytes) of the files about to be read, from the zip directory
    or the file system: each under MAX_FILE_MB, all together under MAX_DECODED_MB."""
    for name, size in sizes:
        check_bytes(size, f"{source}: {Path(name).name}", "the uncompressed file", "MAX_FILE_MB")
    check_bytes(sum(s for _, s in sizes), source, f"{len(sizes)} files, uncompressed")


def open_zip(path: Path) -> zipfile.ZipFile:
    """A ZipFile after checking, from the end record alone, that its directory is not a bomb
    of millions of entries (ZipFile reads the whole directory into memory)."""
    cap = int(limit("MAX_ZIP_ENTRIES"))
    try:
        with open(path, "rb") as fp:
            end = zipfile._EndRecData(fp)  # the end-of-central-directory record
        if end is not None and end[zipfile._ECD_ENTRIES_TOTAL] > cap:
            raise LimitError(f"{path.name}: {end[zipfile._ECD_ENTRIES_TOTAL]:,} entries, over "
                             f"the limit of {cap:,} (PFML_MAX_ZIP_ENTRIES)")
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path.name} is not a readable zip archive "
                         f"({type(e).__name__})") from None


class PixelBudget:
    """Pixels of an image set, counted from each image's header before it is decoded."""

    def __init__(self, source: str):
        self.source = source
        self.left = limit("MAX_TOTAL_MEGAPIXELS") * 1e6

    def take(self, size: tuple[int, int], name: str) -> None:
        w, h = size
        cap = limit("MAX_IMAGE_MEGAPIXELS") * 1e6
        if w * h > cap:
            raise LimitError(f"{self.source}: image {name!r} is {w:,} x {h:,} pixels, over the "
                             f"{cap / 1e6:g}-megapixel limit (PFML_MAX_IMAGE_MEGAPIXELS)")
        self.left -= w * h
        if self.left < 0:
            raise LimitError(f"{self.source}: the images hold more than "
                             f"{limit('MAX_TOTAL_MEGAPIXELS'):g} megapixels in all "
                             "(PFML_MAX_TOTAL_MEGAPIXELS)")
