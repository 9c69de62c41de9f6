"""A shared classroom server tried as an adversarial student would: decompression bombs,
server paths typed into the app, Markdown in URLs and files, damaged files, input that used
to give silently wrong results, and uploads. Each is refused early with a one-line message
that names no server path and quotes nothing from inside a file, and nothing may take more
than 1 GiB (measured in a forked child: tests/abuse_files.measure)."""
from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from pfml_core import data
from pfml_core.physics import PotentialFieldLoss
from pfml_core.playground import url_state
from studio import safe
from tests import abuse_files as af
from tests.lab_helpers import wait_for

pytestmark = pytest.mark.abuse
MAX_PEAK_MIB = 1024


def refused(result: dict, *patterns: str) -> str:
    """The child's outcome was a one-line ValueError matching every pattern, under 1 GiB."""
    assert result["outcome"] == "refused", result
    assert result["peak_mib"] < MAX_PEAK_MIB, result
    msg = result["message"]
    assert "\n" not in msg
    for p in patterns:
        assert re.search(p, msg), (p, msg)
    return msg


# --- 1. decompression bombs -----------------------------------------------------------

@pytest.mark.parametrize("side", [13_000, 15_000])  # 169 MP (PIL warns), 225 MP (PIL refuses)
def test_zip_holding_a_huge_zero_png_is_refused_from_its_header(tmp_path, side):
    z = af.huge_png_zip(tmp_path, side)
    assert z.stat().st_size < 300_000  # a small upload ...
    msg = refused(af.measure(data.load_dataset, str(z)), r"50-megapixel limit",
                  r"PFML_MAX_IMAGE_MEGAPIXELS", r"huge\.png")  # ... that would decode to GiBs
    assert str(tmp_path) not in msg


def test_npz_of_a_gibibyte_of_zeros_is_refused_from_its_header(tmp_path):
    f = af.zeros_npz(tmp_path)  # the 1 GiB float64 X
    assert f.stat().st_size < 2**12
    result = af.measure(data.load_dataset, str(f))
    refused(result, r"1,024 MiB, over the 256 MiB limit", r"PFML_MAX_DECODED_MB")
    assert result["seconds"] < 60  # refused from the header: nothing was decompressed


def test_npz_header_claiming_a_huge_shape_is_a_value_error(tmp_path):
    f = af.forged_npz(tmp_path)
    refused(af.measure(data.load_dataset, str(f)), r"forged\.npz", r"\(1099511627776, 4\)",
            r"over the 256 MiB limit")


def test_npz_header_larger_than_its_data_is_refused(tmp_path):
    f = af.npz_claiming(tmp_path / "short.npz", (1000, 4), data_bytes=100)  # under the cap
    refused(af.measure(data.load_dataset, str(f)), r"short\.npz", r"truncated or forged")


def test_zip_entry_over_the_per_file_limit_is_refused_before_it_is_read(tmp_path):
    z = af.big_entry_zip(tmp_path)
    assert z.stat().st_size < 2**20
    refused(af.measure(data.load_dataset, str(z)), r"big\.png", r"65 MiB, over the 64 MiB",
            r"PFML_MAX_FILE_MB")


def test_total_limits_and_operator_overrides(tmp_path, monkeypatch):
    folder = af.image_folder(tmp_path / "imgs", per_class=4)  # 8 images of 3 x 64 x 64 floats
    assert len(data.load_dataset(str(folder)).y) == 8
    monkeypatch.setenv("PFML_MAX_DECODED_MB", "0.25")  # 8 x 48 KiB = 0.375 MiB decoded
    with pytest.raises(ValueError, match=r"8 decoded images would take 0.38 MiB, over the "
                                         r"0.25 MiB limit"):
        data.load_dataset(str(folder))
    monkeypatch.setenv("PFML_MAX_DECODED_MB", "1")
    monkeypatch.setenv("PFML_MAX_TOTAL_MEGAPIXELS", str(5 * 144 / 1e6))  # 8 images of 144 px
    with pytest.raises(ValueError, match=r"more than 0.00072 megapixels in all"):
        data.load_dataset(str(folder))
    monkeypatch.delenv("PFML_MAX_TOTAL_MEGAPIXELS")
    monkeypatch.setenv("PFML_MAX_ZIP_ENTRIES", "5")
    with pytest.raises(ValueError, match=r"6 entries, over the limit of 5"):
        data.load_dataset(str(af.image_zip(tmp_path / "six.zip")))  # 2 x 3 images
    monkeypatch.setenv("PFML_MAX_ZIP_ENTRIES", "lots")
    with pytest.raises(ValueError, match="PFML_MAX_ZIP_ENTRIES must be a positive number"):
        data.load_dataset(str(tmp_path / "six.zip"))


def test_csv_is_sized_before_it_is_parsed(tmp_path, monkeypatch):
    f = tmp_path / "wide.csv"
    f.write_text("a,b,label\n" + "1,2,0\n3,4,1\n" * 5000)  # 30,003 cells -> 240 KB parsed
    assert len(data.load_dataset(str(f)).y) == 10_000
    monkeypatch.setenv("PFML_MAX_DECODED_MB", "0.2")
    with pytest.raises(ValueError, match=r"wide\.csv: the parsed table would take 0.23 MiB"):
        data.load_dataset(str(f))


# --- 2. server paths in the app ---------------------------------------------------------

@pytest.fixture
def uploads(tmp_path):
    return af.uploads_folder(tmp_path)


def test_dataset_refs_stay_in_the_uploads_and_the_data_root(tmp_path, uploads):
    root = af.data_root(tmp_path)
    stored = data.store_upload("mine.npz", _npz_bytes(tmp_path), uploads)
    assert data.resolve_dataset_ref("digits", uploads, None) == "digits"
    assert data.resolve_dataset_ref(stored.name, uploads, None) == str(stored.resolve())
    assert data.resolve_dataset_ref(" pets ", uploads, root) == str((root / "pets").resolve())
    for ref in (*af.ABSOLUTE_PATHS, "~/x", "C:/Windows"):
        with pytest.raises(ValueError, match="absolute paths are not allowed") as e:
            data.resolve_dataset_ref(ref, uploads, root)
        assert "etc" not in str(e.value) and "such" not in str(e.value)
    for ref in (af.DOTDOT_PATH, "../..", "pets/../../root", "a/../../x"):
        with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
            data.resolve_dataset_ref(ref, uploads, root)
    with pytest.raises(ValueError, match="leads outside the data root"):
        data.resolve_dataset_ref(af.ESCAPE_LINK, uploads, root)
    with pytest.raises(ValueError, match="this server opens no other paths"):
        data.resolve_dataset_ref("pets", uploads, None)  # no data root: paths are off
    with pytest.raises(ValueError, match="no upload named 0123456789abcdef.csv"):
        data.resolve_dataset_ref("0123456789abcdef.csv", uploads, root)
    with pytest.raises(ValueError, match=r"'cats': no such file or folder under the data root") as e:
        data.resolve_dataset_ref("cats", uploads, root)
    assert str(root) not in str(e.value)


def test_data_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PFML_DATA_ROOT", raising=False)
    assert data.data_root() is None  # off by default
    monkeypatch.setenv("PFML_DATA_ROOT", str(tmp_path))
    assert data.data_root() == tmp_path


def test_user_file_messages_show_no_server_path_and_no_content(tmp_path):
    af.planted_csvs(tmp_path)
    (tmp_path / "strs.npz").write_bytes(_npz_bytes(tmp_path, y=np.array(["cat", "dog"] * 4)))
    af.image_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "dogs" / "bad.png").write_bytes(b"not an image at all")
    cases = {"headerless.csv": r"none of its 3 columns", "words.csv": r"column number 1",
             "header.csv": r"none of its 2 columns", "strs.npz": "non-numeric", "imgs": r"'dogs/bad.png'.*corrupt",
             "missing.npz": "no such file"}
    for name, pattern in cases.items():
        with pytest.raises(ValueError, match=pattern) as e:
            data.load_dataset(str(tmp_path / name))
        msg = str(e.value)
        assert str(tmp_path) not in msg and "/" + tmp_path.name not in msg, msg
        for content in (*af.PLANTED, "cat", "dog"):
            assert f"'{content}'" not in msg and f" {content}" not in msg, msg


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("PFML_DATA_ROOT", raising=False)
    return tmp_path / "runs"


@pytest.mark.slow
@pytest.mark.parametrize("page", ["noise", "sweep"])
def test_lab_pages_open_no_server_path(runs_dir, fake_trainer, page):
    """/etc and a missing path get the same one-line refusal (no existence oracle) and no
    grid; an upload's stored name is accepted, and the grid list shows no server path."""
    at = AppTest.from_file(f"../pages/{'noise_lab' if page == 'noise' else page}.py",
                           default_timeout=60).run()
    shown = []
    for ref in (*af.ABSOLUTE_PATHS, af.DOTDOT_PATH):
        at.text_input(key=f"{page}_path").set_value(ref)
        at.button[0].click().run()
        assert not at.exception and len(at.error) == 1
        shown.append(at.error[0].value)
        assert not [name for name in af.SERVER_NAMES if name in shown[-1]]
    assert shown[0] == shown[1]  # existing and missing server paths look the same
    from pfml_core.lab.studies import Lab

    assert Lab().grids() == []
    stored = data.store_upload("mine.npz", _npz_bytes(runs_dir.parent), runs_dir / data.UPLOADS)
    at.text_input(key=f"{page}_path").set_value(stored.name)
    at.text_input(key=f"{page}_seeds").set_value("0")
    at.number_input(key=f"{page}_epochs").set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error
    (grid,) = Lab().grids()
    assert grid["spec"]["data"] == str(stored.resolve())
    wait_for(lambda: Lab().grid(grid["id"])["status"] not in ("queued", "running"), 120,
             "grid finished")
    at.run()
    (label,) = at.selectbox(key=f"{page}_grid").options
    assert stored.name in label and str(runs_dir) not in label


# --- 3. markdown injection --------------------------------------------------------------

def test_plain_escapes_every_markdown_construct():
    hostile = af.MARKDOWN
    out = safe.plain(hostile)
    unescaped = re.sub(r"\\.", "", out)  # what is left once every escaped character is gone
    assert not set(unescaped) & set("![]()<>$*:`_")
    assert re.sub(r"\\(.)", r"\1", out).replace(safe.ZWSP, "") == hostile  # as written
    assert "https" + safe.ZWSP in out and "www" + safe.ZWSP in out  # no autolinks
    assert safe.plain("cannot open /srv/runs/_uploads/ab.npz\ntraceback...") == \
        r"cannot open ab\.npz"


# --- 7. uncaught errors -----------------------------------------------------------------

def test_npy_renamed_npz_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"^x\.npz is a single \.npy array renamed \.npz"):
        data.load_dataset(str(af.renamed_npy(tmp_path)))


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_damaged_store_is_kept_aside_and_a_fresh_one_started(tmp_path, how):
    from pfml_core.lab import grid
    from pfml_core.lab.studies import Lab

    path = af.damaged_store(tmp_path / "studies.sqlite", how)
    before = path.read_bytes()
    s = Lab(f"sqlite:///{path}")
    assert s.recovered is not None and s.recovered.read_bytes() == before  # kept, untouched
    assert s.recovered.name.startswith("studies.sqlite.damaged-")
    assert s.grids() == [] and s.create_grid("noise", grid.noise_grid("digits", ["pfml"], [0.0], [0])) == 1
    again = Lab(f"sqlite:///{path}")  # the fresh store is sound: nothing more is moved aside
    assert again.recovered is None and len(again.grids()) == 1
    assert sorted(p.name for p in tmp_path.glob("studies.sqlite.damaged-*")) == [s.recovered.name]


def test_cli_on_a_damaged_store_is_one_line(tmp_path, capsys):
    from pfml_core.cli import main as cli_main

    path = af.damaged_store(tmp_path / "lab.sqlite")
    rc = cli_main(["lab-export", "1", str(tmp_path / "out.csv"), "--store", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert rc in (0, 2) and "Traceback" not in "".join(err)  # 2: grid 1 is not in a fresh store
    assert re.fullmatch(r"note: the run store was damaged; it is kept as "
                        r"lab\.sqlite\.damaged-[\d-]+ and a fresh one was started", err[0])
    assert len(err) == 1 + (rc == 2) and len(list(tmp_path.glob("lab.sqlite.damaged-*"))) == 1


@pytest.mark.slow
def test_lab_page_on_a_damaged_store_warns_once(runs_dir):
    runs_dir.mkdir(parents=True, exist_ok=True)
    af.damaged_store(runs_dir / "studies.sqlite")
    at = AppTest.from_file("../pages/noise_lab.py", default_timeout=60).run()
    assert not at.exception
    assert [w.value for w in at.warning if "damaged" in w.value] == [
        f"The run store was damaged: it is kept as `{next(runs_dir.glob('*.damaged-*')).name}` "
        "and a fresh one was started. Earlier grids are not listed."]
    assert any(i.value.startswith("No grids yet") for i in at.info)


@pytest.mark.slow
def test_failed_run_errors_show_one_line_without_server_paths(runs_dir):
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from pfml_core.lab import grid
    from pfml_core.lab.studies import Lab

    s = Lab()
    gid = s.create_grid("noise", grid.noise_grid("digits", ["pfml"], [0.0], [0]))
    trial = s.study(gid).ask({"loss": CategoricalDistribution(["pfml"])})
    trial.set_user_attr("error", "FileNotFoundError: [Errno 2] No such file: "
                        "'/srv/pfml/runs/x/embeddings.tmp.npz'\nTraceback (most recent call last):\n"
                        '  File "/srv/pfml/pfml_core/training/engine.py", line 1')
    s.study(gid).tell(trial, state=TrialState.FAIL)
    at = AppTest.from_file("../pages/noise_lab.py", default_timeout=60).run()
    assert not at.exception
    (err,) = [e.value for e in at.error if "failed" in e.value]
    assert err == (f"run {trial._trial_id} failed: FileNotFoundError\\: \\[Errno 2\\] No such file\\: "
                   "\\'embeddings\\.tmp\\.npz\\'")
    shown = [d.value for d in at.dataframe if "error" in d.value]
    assert shown and all(list(d["error"]) == ["FileNotFoundError: [Errno 2] No such file: "
                                              "'embeddings.tmp.npz'"] for d in shown)


# --- 8. silent wrong results ------------------------------------------------------------

def test_values_that_overflow_float32_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"overflow\.npz: X has 1 value\(s\) beyond float32's range"):
        data.load_dataset(str(af.overflow_npz(tmp_path)))


def test_data_too_small_for_recall_is_refused(tmp_path):
    one_each = data.load_dataset(str(af.one_per_class_npz(tmp_path)))
    with pytest.raises(ValueError, match=r"zero-shot split.*at least 2 held-out samples per "
                                         r"class.*3 of 3 held-out classes have fewer"):
        data.split(one_each, "zero-shot")
    two_each = data.Dataset(np.eye(8, dtype=np.float32), np.arange(8) % 4, list("abcd"), "features")
    with pytest.raises(ValueError, match=r"same-classes split.*4 of 4 held-out classes"):
        data.split(two_each, "same-classes")  # 1 train + 1 test sample per class
    train, test = data.split(two_each, "zero-shot")  # 2 per held-out class: enough
    assert list(np.bincount(test.y)) == [2, 2]


def test_empty_batch_to_the_loss_is_a_value_error():
    with pytest.raises(ValueError, match=r"empty batch \(shape \(0, 4\)\)"):
        af.loss_on_empty_batch()
    loss = PotentialFieldLoss(num_classes=3, embedding_size=4, proxies_per_class=2)
    assert torch.isfinite(loss(torch.randn(3, 4), torch.tensor([0, 1, 2])))  # one sample is enough


def test_repeated_url_key_gets_a_notice():
    values, _, notices = url_state.parse(af.REPEATED_KEY)
    assert values["alpha"] == 4.0 and values["delta"] == 0.2
    assert notices == ["URL key pg_alpha is given 2 times; using the last, `4`."]


# --- 9. uploads -------------------------------------------------------------------------

def _npz_bytes(tmp_path, y=None) -> bytes:
    f = af.features_npz(tmp_path / "tmp_upload.npz", np.random.default_rng(0).normal(size=(8, 3)),
                        np.arange(8) % 4 if y is None else y)
    raw = f.read_bytes()
    f.unlink()
    return raw


def test_uploads_are_checked_before_they_are_kept(uploads):
    with pytest.raises(ValueError, match=r"^my_data\.csv needs a header row"):
        data.store_upload(*af.HEADERLESS_UPLOAD, uploads)
    with pytest.raises(ValueError, match=r"^evil\.npz is a single \.npy array"):
        data.store_upload("../../evil.npz", b"\x93NUMPY" + bytes(100), uploads)
    assert list(uploads.iterdir()) == []  # nothing kept, not even the checking folder
    raw = _npz_bytes(uploads.parent)
    path = data.store_upload("good.npz", raw, uploads)
    assert path.parent == uploads and re.fullmatch(r"[0-9a-f]{16}\.npz", path.name)
    assert path.read_bytes() == raw and data.store_upload("again.npz", raw, uploads) == path


def test_old_uploads_expire_when_a_new_one_is_stored(uploads, monkeypatch):
    old = data.store_upload("old.npz", _npz_bytes(uploads.parent), uploads)
    stale = uploads / (data.access._CHECKING + "leftover")
    stale.mkdir()
    keep = uploads / "notes.txt"  # not an upload: never touched
    keep.write_text("x")
    day_ago = time.time() - 25 * 3600
    for p in (old, stale, keep):
        os.utime(p, (day_ago, day_ago))
    y = np.arange(8) % 2
    new = data.store_upload("new.npz", _npz_bytes(uploads.parent, y), uploads)
    assert sorted(p.name for p in uploads.iterdir()) == sorted([new.name, "notes.txt"])
    monkeypatch.setenv("PFML_UPLOAD_TTL_HOURS", "0.0001")
    os.utime(new, (time.time() - 3600, time.time() - 3600))
    assert data.expire_uploads(uploads) == 1 and not new.exists()


def test_resolving_an_upload_keeps_it_alive(uploads):
    path = data.store_upload("a.npz", _npz_bytes(uploads.parent), uploads)
    os.utime(path, (time.time() - 25 * 3600,) * 2)
    data.resolve_dataset_ref(path.name, uploads, None)
    assert data.expire_uploads(uploads) == 0 and path.exists()


def test_the_server_never_shows_tracebacks_to_visitors():
    """An unexpected error shows its type only: the traceback and server paths stay in the
    operator's console (Streamlit's client.showErrorDetails, read as the server reads it)."""
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] in ("type", "none")
