"""Every hostile input of a shared classroom server in one table (pytest -m abuse -s shows
it): input, outcome, the child's peak memory, time, and whether its message leaked a path
or planted content. Each runs in a forked child (tests/abuse_files.measure); none may crash,
pass 1 GiB, or leak. Inputs shared with tests/test_abuse.py come from tests/abuse_files.py."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pfml_core import data
from tests import abuse_files as af

pytestmark = pytest.mark.abuse
MAX_PEAK_MIB = 1024
PLANTED = (*af.PLANTED, *af.SERVER_NAMES)  # content that must never show


def _zip_entries(path: Path, n: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"set/c{i % 2}/{i}.png", b"")
    return path


def _csv_bomb(path: Path, mib: int) -> Path:
    line = ("0," * 63 + "0\n").encode()  # 64 cells in 128 bytes
    with open(path, "wb") as f:
        for _ in range(mib * 2**20 // (len(line) * 1024)):
            f.write(line * 1024)
    return path


def _load(path: str) -> str:
    d = data.load_dataset(path)
    return f"loaded {len(d.y)} samples of {d.num_classes} classes"


def _split(path: str) -> str:
    train, test = data.split(data.load_dataset(path), "zero-shot")
    return f"split {len(train.y)} / {len(test.y)}"


def _repeated_key() -> str:
    from pfml_core.playground import url_state

    _, _, notices = url_state.parse(af.REPEATED_KEY)
    assert notices, "no notice: the first value was dropped silently"
    return f"notice: {notices[0]}"


def _damaged_store(path: Path) -> str:
    from pfml_core.lab.studies import Lab

    s = Lab(f"sqlite:///{path}")
    kept = getattr(s, "recovered", None)
    return f"moved aside as {kept.name}, fresh store with {len(s.grids())} grids" if kept \
        else "opened"


def _upload(name: str, raw: bytes, folder: Path) -> str:
    try:
        return f"stored as {data.store_upload(name, raw, folder).name}"
    finally:
        assert not any(folder.iterdir()), "a refused upload was kept"


def _ref(ref: str, uploads: Path, root: Path | None) -> str:
    return f"opened {Path(data.resolve_dataset_ref(ref, uploads, root)).name}"


def _markdown(text: str) -> str:
    from studio import safe

    return f"shown as text: {safe.plain(text)}"


def _settings(**changes) -> str:
    from pfml_core.training import TrainConfig

    loss_params = {k: changes.pop(k) for k in ("proxies_per_class", "alpha") if k in changes}
    TrainConfig(data="digits", loss_params=loss_params, **changes).validate()
    return "accepted"


def _cli(*argv: str) -> str:
    """The CLI in this child: exit 2 with one line on stderr counts as refused."""
    import contextlib
    import io

    from pfml_core import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    lines = err.getvalue().strip().splitlines()
    if code == 2 and len(lines) == 1:
        raise ValueError(lines[0])
    return f"exit {code}: {err.getvalue().strip()[-200:]}"


def _names_in_the_map(names: list[str]) -> str:
    from pfml_core.viz import training as viz

    n = len(names)
    xy = np.random.default_rng(0).normal(size=(2 * n, 2))
    meta = {"label": np.tile(np.arange(n), 2), "group": np.repeat(["train", "held-out"], n),
            "flipped": np.zeros(2 * n, bool), "row": np.arange(2 * n)}
    fig = viz.map_figure([viz.map_frame(0, xy, meta)], xy, meta,
                         {"train": names, "held-out": names}, "PCA")
    shown = " ".join(str(t.name) + str(t.hovertemplate) for t in fig.data)
    if any(tag in shown for tag in ("<a ", "<span", "<img")):
        raise RuntimeError(f"markup in the figure: {shown[:200]}")
    return "names shown as text"


def _grid_over_budget(path: Path) -> str:
    from pfml_core.lab import grid
    from pfml_core.lab.studies import Lab

    spec = grid.noise_grid("digits", ["pfml"], [0.0], list(range(500)), base={"epochs": 500})
    Lab(f"sqlite:///{path}").create_grid("noise", spec, owner="a" * 32)
    return "queued"


def _upload_over_quota(folder: Path) -> str:
    os.environ["PFML_MAX_UPLOADS_MB"] = "1"
    raw = af.features_npz(folder.parent / "q.npz", np.random.default_rng(0).normal(size=(3000, 64)),
                          np.arange(3000) % 4).read_bytes()  # 1.5 MB
    return f"stored as {data.store_upload('mine.npz', raw, folder).name}"


def _sixteen_bit(path: Path) -> str:
    d = data.load_dataset(str(path))
    values = np.unique(np.round(np.asarray(d.X, np.float64), 6))
    if len(values) < 64 or values.max() < 0.99:
        raise RuntimeError(f"16-bit gradient decoded to {len(values)} values up to {values.max()}")
    return f"{len(values)} distinct values in [{values.min():.2f}, {values.max():.2f}]"


def _sixteen_bit_zip(path: Path) -> Path:
    import io

    from PIL import Image

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    with zipfile.ZipFile(path, "w") as zf:
        for c in ("a", "b"):
            for i in range(3):
                buf = io.BytesIO()
                Image.fromarray(ramp).save(buf, format="PNG")
                zf.writestr(f"set/{c}/{i}.png", buf.getvalue())
    return path


def _csv_columns(path: Path, n: int) -> Path:
    path.write_text(",".join(f"c{i}" for i in range(n)) + ",label\n" + "0," * n + "1\n")
    return path


def _csv_strings(path: Path, rows: int) -> Path:
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(10)) + ",label\n")
        for _ in range(rows // 10_000):
            f.write(("ab," * 10 + "0\n") * 10_000)
    return path


def issue_18_cases(tmp: Path) -> list[tuple[str, str, object, tuple]]:
    """Settings, names, parsing, queues and the CLI (issue 18)."""
    store, notes = tmp / "lab18.sqlite", tmp / "notes.txt"
    notes.write_text("my notes\n")
    (tmp / "outdir").mkdir()
    uploads = tmp / "quota" / "_uploads"
    uploads.mkdir(parents=True)
    hostile = ["![pixel](https:evil.example)", ":red[RED]", "$x^2$",
               '<a href="https:evil.example" target="_blank">Free exam answers',
               '<span style="font-size:90px;fill:red">HACKED']
    nested = "[" * 100_000 + "]" * 100_000
    return [
        ("proxies_per_class = 200,000 on digits", "refused",
         lambda: _settings(proxies_per_class=200_000), ()),
        ("proxies_per_class = 10**9", "refused", lambda: _settings(proxies_per_class=10**9), ()),
        ("samples_per_class = 10,000", "refused", lambda: _settings(samples_per_class=10_000), ()),
        ("alpha = 1e6", "refused", lambda: _settings(alpha=1e6), ()),
        ("seed = 2**32", "refused", lambda: _settings(seed=2**32), ()),
        ("class names as links, images, spans, Markdown", "ok", _names_in_the_map, (hostile,)),
        (".csv with 400,000 columns", "refused", _load, (str(_csv_columns(tmp / "wide.csv", 400_000)),)),
        (".csv of 3M short strings", "refused", _load, (str(_csv_strings(tmp / "s.csv", 300_000)),)),
        ("zip of 16-bit PNG gradients", "ok", _sixteen_bit, (_sixteen_bit_zip(tmp / "16.zip"),)),
        ("lab grid: 500 runs x 500 epochs", "refused", _grid_over_budget, (store,)),
        ("upload over the total quota", "refused", _upload_over_quota, (uploads,)),
        ("cli lab-export 999 out.csv", "refused", _cli,
         ("lab-export", "999", str(tmp / "out.csv"), "--store", str(store))),
        ("cli --store notes.txt", "refused", _cli,
         ("lab-export", "1", str(tmp / "o.csv"), "--store", str(notes))),
        ("cli --store typo/lab.sqlite", "refused", _cli,
         ("lab-export", "1", str(tmp / "o.csv"), "--store", str(tmp / "typo" / "lab.sqlite"))),
        ("cli lab-cancel 999", "refused", _cli, ("lab-cancel", "999", "--store", str(store))),
        ("cli train --out /dev/null", "refused", _cli, ("train", "--data", "digits", "--out", "/dev/null")),
        ("cli train --out /proc/x", "refused", _cli, ("train", "--data", "digits", "--out", "/proc/x")),
        ("cli train --device cuda (no GPU)", "refused", _cli,
         ("train", "--data", "digits", "--device", "cuda:7", "--out", str(tmp / "r1"))),
        ("cli --loss-params nested 100,000 deep", "refused", _cli,
         ("train", "--data", "digits", "--loss-params", nested, "--out", str(tmp / "r2"))),
        ("cli train --proxies-per-class 1000000", "refused", _cli,
         ("train", "--data", "digits", "--proxies-per-class", "1000000", "--out", str(tmp / "r3"))),
        ("cli suspects --out a folder", "refused", _cli,
         ("suspects", str(tmp), "--out", str(tmp / "outdir"))),
        ("cli sweep --delta 1e-300", "refused", _cli, ("sweep", "--delta", "1e-300", "--store", str(store))),
        ("cli noise-lab --seeds 4294967296", "refused", _cli,
         ("noise-lab", "--seeds", "4294967296", "--store", str(store))),
    ]


def cases(tmp: Path) -> list[tuple[str, str, object, tuple]]:
    """(input, expected outcome, function, args)."""
    root, uploads = af.data_root(tmp), af.uploads_folder(tmp)
    csvs = {name: str(path) for name, path in af.planted_csvs(tmp).items()}
    paths = [(f"app path {ref}", "refused", _ref, (ref, uploads, root))
             for ref in (*af.ABSOLUTE_PATHS, af.DOTDOT_PATH, af.ESCAPE_LINK)]
    return [
        ("control: a zip of 6 small images", "ok", _load, (str(af.image_zip(tmp / "ok.zip")),)),
        ("zip: a 13,000 x 13,000 PNG (0.8 GiB decoded)", "refused", _load, (str(af.huge_png_zip(tmp)),)),
        ("zip: one entry of 65 MiB", "refused", _load, (str(af.big_entry_zip(tmp)),)),
        ("zip: 120,000 entries", "refused", _load, (str(_zip_entries(tmp / "n.zip", 120_000)),)),
        (".npz: header claims shape (2**40, 4)", "refused", _load, (str(af.forged_npz(tmp)),)),
        (".npz: header claims (2**27, 1), 1 GiB", "refused", _load, (str(af.zeros_npz(tmp)),)),
        (".npy renamed .npz", "refused", _load, (str(af.renamed_npy(tmp)),)),
        (".csv 80 MiB of '0,' (320 MiB parsed)", "refused", _load,
         (str(_csv_bomb(tmp / "b.csv", 80)),)),
        ("headerless .csv (first row is data)", "refused", _load, (csvs["headerless.csv"],)),
        (".csv of words", "refused", _load, (csvs["words.csv"],)),
        (".csv header ![x](http://HOST/t.png)", "refused", _load, (csvs["header.csv"],)),
        ("X holding 1e300 (inf in float32)", "refused", _load, (str(af.overflow_npz(tmp)),)),
        ("one sample per class, zero-shot", "refused", _split, (str(af.one_per_class_npz(tmp)),)),
        ("empty batch to the loss", "refused", af.loss_on_empty_batch, ()),
        ("URL ?pg_alpha=2.5&pg_alpha=4", "ok", _repeated_key, ()),
        *paths,
        ("app path pets (under the data root)", "ok", _ref, ("pets", uploads, root)),
        ("app path pets, no data root set", "refused", _ref, ("pets", uploads, None)),
        ("upload: headerless .csv", "refused", _upload, (*af.HEADERLESS_UPLOAD, uploads)),
        ("lab.sqlite overwritten with text", "ok", _damaged_store,
         (af.damaged_store(tmp / "a.sqlite"),)),
        ("lab.sqlite truncated", "ok", _damaged_store,
         (af.damaged_store(tmp / "b.sqlite", "truncated"),)),
        ("error text with Markdown, links, HTML", "ok", _markdown, (af.MARKDOWN,)),
    ] + issue_18_cases(tmp)


def leaks(message: str, tmp: Path) -> bool:
    if message.startswith("error: "):  # the CLI may name the paths its user typed
        return any(p in message for p in PLANTED)
    text = message.split("shown as text: ", 1)[-1]  # the escaped text is the point there
    escaped = text != message
    return str(tmp) in text or f"/{tmp.name}" in text or (
        not escaped and any(p in text for p in PLANTED))


def test_every_hostile_input_in_one_table(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PFML_MAX_UPLOADS_MB", raising=False)
    rows, bad = [], []
    for label, expect, fn, args in cases(tmp_path):
        r = af.measure(fn, *args)
        leak = leaks(r["message"], tmp_path)
        if leak or r["outcome"] != expect or r["peak_mib"] > MAX_PEAK_MIB:
            bad.append((label, r))
        rows.append(f"{label:<50} {r['outcome']:<8} {r['peak_mib']:>8.0f} {r['seconds']:>7.2f}  "
                    f"{'LEAK' if leak else 'no':<4}  {r['message'][:110]}")
    with capsys.disabled():
        print(f"\n{'input':<50} {'outcome':<8} {'peak MiB':>8} {'time s':>7}  leak  message")
        print("\n".join(rows))
    assert not bad, bad
    assert not [d for d in tmp_path.iterdir() if d.name.startswith("r") and d.name[1:].isdigit()], \
        "a refused run left a folder"
