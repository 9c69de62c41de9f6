"""Parsing bounded by what it builds (issue 18, items 3 and 6): a CSV's columns are counted
in its header and its cells from its line count before pandas sees it, strings are refused
one chunk in, never for the whole file; 16-bit and other image modes are scaled by their
own range or refused with a message."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pfml_core import data
from pfml_core.data import images, limits, user_files
from pfml_core.data.transforms import eval_transform
from tests import abuse_files as af


def _refused(path) -> tuple[str, float, float]:
    """Open path in a forked child: (its refusal message, MiB its peak memory grew by over
    a child that does nothing, seconds)."""
    base = af.measure(lambda: 0)["peak_mib"]
    got = af.measure(data.load_dataset, str(path))
    assert got["outcome"] == "refused", got
    return got["message"], got["peak_mib"] - base, got["seconds"]


def test_400000_columns_are_refused_from_the_header(tmp_path):
    f = tmp_path / "wide.csv"
    f.write_text(",".join(f"c{i}" for i in range(400_000)) + ",label\n" + "0," * 400_000 + "1\n")
    (tmp_path / "small.csv").write_text("a,label\n1,0\n2,1\n")
    data.load_dataset(str(tmp_path / "small.csv"))  # the readers' imports, once
    err, grew, seconds = _refused(f)
    assert err == "wide.csv: its header has more than 10,000 columns, over the limit " \
                  "(PFML_MAX_CSV_COLUMNS)"
    assert seconds < 1.0 and grew < 10  # one 1 MiB read of the header, nothing parsed


def test_the_column_limit_is_the_operators(tmp_path, monkeypatch):
    f = tmp_path / "f.csv"
    f.write_text("a,b,c,label\n" + "1,2,3,0\n4,5,6,1\n")
    assert data.load_dataset(str(f)).X.shape == (2, 3)
    monkeypatch.setenv("PFML_MAX_CSV_COLUMNS", "3")
    with pytest.raises(limits.LimitError, match="more than 3 columns"):
        data.load_dataset(str(f))


def test_millions_of_cells_are_counted_at_the_headers_width(tmp_path, monkeypatch):
    """pandas pads short rows with NaN: 3 columns x 2,000,001 lines are 6M float64 cells
    (46 MiB), however few commas the rows hold; refused before pandas reads a line."""
    f = tmp_path / "cells.csv"
    f.write_bytes(b"a,b,label\n" + b"1\n" * 2_000_000)
    monkeypatch.setenv("PFML_MAX_DECODED_MB", "30")
    err, grew, seconds = _refused(f)
    assert err == ("cells.csv: the parsed table would take 46 MiB, over the 30 MiB limit "
                   "(the operator can raise it with PFML_MAX_DECODED_MB)")
    assert seconds < 2 and grew < 10


def test_strings_are_refused_one_chunk_in(tmp_path):
    """1.5M distinct short strings: pandas held ~65 MB of them before refusing; one chunk
    is under 15 MB. Strings in the label column: 195 MB before, now one chunk's."""
    f = tmp_path / "words.csv"
    f.write_bytes(b"a,b,label\n" + b"".join(b"a%d,b%d,0\n" % (i, i) for i in range(750_000)))
    err, grew, _ = _refused(f)
    assert err == "words.csv: feature columns must be numeric; 2 are not (feature column " \
                  "number 1, 2)"
    assert grew < 30, grew
    f.write_bytes(b"a,label\n" + b"".join(b"1,c%d\n" % i for i in range(1_000_000)))
    err, grew, _ = _refused(f)
    assert "labels must be integer class ids, got non-numeric values" in err and grew < 60, grew


def test_chunks_assemble_the_same_table(tmp_path, monkeypatch):
    monkeypatch.setattr(user_files, "CSV_CHUNK_CELLS", 7)  # 2 rows of 3 columns per chunk
    rows = [(i * 0.5, -i, i % 3) for i in range(11)]
    f = tmp_path / "t.csv"
    f.write_text("x,label,z\n" + "".join(f"{a},{c},{b}\n" for a, b, c in rows))
    d = data.load_dataset(str(f))
    assert np.allclose(d.X, [[a, b] for a, b, _ in rows]) and list(d.y) == [c for *_, c in rows]
    f.write_text("x,label,z\n" + "".join(f"{a},{c},{b}\n" for a, b, c in rows) + "1,0,oops\n")
    with pytest.raises(ValueError, match=r"1 are not \(feature column number 2\)"):
        data.load_dataset(str(f))


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    im.save(buf, "PNG" if im.mode not in ("F", "I", "CMYK") else "TIFF")
    return buf.getvalue()


SQUARE = eval_transform(64, 64, normalize=False)  # 64 x 64 in, no resampling


def test_a_16_bit_gradient_decodes_to_its_ramp():
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)
    raw = _png(np.tile(ramp, (64, 1)))
    assert Image.open(io.BytesIO(raw)).mode == "I;16"
    x = images.decode(raw, SQUARE, "ramp.png")
    assert x.shape == (3, 64, 64) and len(np.unique(x)) == 64
    assert np.allclose(x, (ramp / 65535.0)[None, None, :], atol=1e-6)


def test_a_16_bit_image_folder_is_not_white(tmp_path):
    for c, level in (("dark", 4000), ("light", 60000)):
        (tmp_path / "set" / c).mkdir(parents=True)
        for i in range(3):
            a = np.full((40, 40), level + 100 * i, np.uint16)
            (tmp_path / "set" / c / f"{i}.png").write_bytes(_png(a))
    d = data.load_dataset(str(tmp_path / "set"), image_size=40)
    means = d.X.reshape(len(d.y), -1).mean(1)
    assert np.allclose(means, [(4000 + 100 * i) / 65535 for i in range(3)]
                       + [(60000 + 100 * i) / 65535 for i in range(3)], atol=1e-5)


def test_other_modes_scale_or_are_refused():
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    want = (gray / 255.0)[None].repeat(3, 0)
    for mode in ("L", "LA", "P", "CMYK", "I"):  # "I" is 32-bit: read on the 16-bit scale
        x = images.decode(_png(gray, mode), SQUARE, "g.png")
        assert np.allclose(x, want / 257 if mode == "I" else want, atol=1e-6), mode
    x = images.decode(_png((gray / 255.0).astype(np.float32)), SQUARE, "f.tif")
    assert np.allclose(x, want, atol=1e-6)
    bits = images.decode(_png(gray > 127, "1"), SQUARE, "b.png")
    assert set(np.unique(bits)) == {0.0, 1.0}
    with pytest.raises(ValueError, match=r"^cannot read image 'f.tif': its floating-point pixels "
                                         r"are not all in \[0, 1\]"):
        images.decode(_png(gray.astype(np.float32)), SQUARE, "f.tif")
    with pytest.raises(ValueError, match=r"integer pixels are outside 0\.\.65535"):
        images.decode(_png(gray.astype(np.int32) - 1, "I"), SQUARE, "i.tif")
