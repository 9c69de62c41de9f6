"""The train page's data preview and "Check my labels": a background job that trains on every
class of the chosen data and ranks every row's label (pfml_core.lab.check_labels), then shows
the suspects on a map, lists them, and cleans and retrains on request (pfml_core.lab.cleaning),
with the CSV and the cleaned data to download."""
from __future__ import annotations

import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pfml_core import data
from pfml_core.lab import check_labels, clean_export, cleaning
from pfml_core.viz import check_map
from studio import cache, safe, train_session
from studio.live_plot import live_plot

KEY = "check_labels_job"
_LIVE: weakref.WeakSet[CheckJob] = weakref.WeakSet()  # every session's check, server-wide
_LOCK = threading.Lock()


class CheckJob:
    """One check in a thread: check, then clean(how, k) retrains; read the fields."""

    def __init__(self, config, dataset, name: str):
        self.config, self.dataset, self.name = config, dataset, name
        self.epoch, self.step, self.error = 0, "checking", None
        self.check: check_labels.Check | None = None
        self.result: dict | None = None
        self.figures: dict = {}
        self.running, self._stop = False, threading.Event()

    def _go(self, work) -> CheckJob:
        def body():
            try:
                work()
            except Exception as e:  # shown on the page, one line
                self.error = str(e)
            finally:
                self.running = False
        self.running, self.error = True, None
        threading.Thread(target=body, daemon=True).start()
        return self

    def _on_epoch(self, snap) -> None:
        self.epoch = snap.epoch

    def start(self) -> CheckJob:
        c = self.config
        overrides = dict(model=c.model, loss=c.loss, loss_params=c.loss_params, lr=c.lr,
                         max_batches_per_epoch=c.max_batches_per_epoch)

        def work():
            self.check = check_labels.check(c.data, c.epochs, c.noise, c.seed, self.dataset,
                                            self._on_epoch, self._stop.is_set, **overrides)
        return self._go(work)

    def clean(self, how: str, k: int) -> CheckJob:
        self.step, self.epoch, self.result = f"retraining ({how}, top {k})", 0, None

        def work():
            self.result = cleaning.retrain(self.check, k, how, self._on_epoch)
        return self._go(work)

    def stop(self) -> None:
        self._stop.set()


def preview(source: str | None, split: str) -> None:
    """Samples, classes, per-class counts, a few images, what the chosen split trains on.
    Always one element (empty without data), so the buttons below keep their place."""
    box = st.container()
    if source is None:
        return
    try:
        ds = cache.train_dataset(source)
    except ValueError as e:
        safe.say("error", e, where=box)
        return
    counts = np.bincount(ds.y, minlength=ds.num_classes)
    with box, st.expander(f"Your data: {len(ds.y)} samples, {ds.num_classes} classes "
                     f"({'images' if ds.kind == 'image' else f'{ds.X.shape[1]} features'})",
                     expanded=source not in data.BUNDLED):
        st.plotly_chart(check_map.class_counts(ds.class_names, counts, "samples per class"),
                        key="check_preview_counts")
        names = data.split_class_names(ds.class_names, split)
        if split == "zero-shot":
            held = int(counts[len(names["train"]):].sum())
            safe.say("caption", f"{', '.join(names['train'])} ({len(ds.y) - held} samples); "
                     f"Recall@K on {', '.join(names['held-out'])} ({held} samples). Check my "
                     f"labels trains on every class, so every row is checked.",
                     before="The zero-shot split trains on classes ")
        if ds.kind == "image":
            first = [int(np.flatnonzero(ds.y == c)[0]) for c in range(min(ds.num_classes, 8))]
            st.plotly_chart(check_map.thumbnails([ds.X[i] for i in first],
                                                 [ds.class_names[ds.y[i]] for i in first]),
                            key="check_preview_images")


def button(col, config) -> None:
    """The 'Check my labels' button: starts this session's check with the page's settings."""
    job = st.session_state.get(KEY)
    busy = job is not None and job.running
    if not col.button("Check my labels", key="check_labels_start", disabled=config is None or busy,
                      help="Train on every class and rank every row's label, most suspect first"):
        return
    try:
        dataset = cache.train_dataset(config.data)
        check_labels.settings(config.data, config.epochs, config.seed)
    except ValueError as e:
        safe.say("error", e)
        return
    with _LOCK:
        if sum(j.running for j in list(_LIVE)) >= train_session.max_jobs():
            st.warning("The server is already checking as many datasets as it runs at once. "
                       "Press the button again when one ends.")
            return
        upload = st.session_state.get("train_upload")  # the user's own file name, not the stored one
        name = config.data if config.data in data.BUNDLED else upload.name if upload else \
            Path(str(config.data)).name
        st.session_state[KEY] = job = CheckJob(config, dataset, name).start()
        _LIVE.add(job)


def section() -> None:
    """The check's progress, then its results (drawn once it is done)."""
    job = st.session_state.get(KEY)
    if job is None:
        return
    st.subheader("Check my labels")
    st.caption("Trains with the settings above on every class (no zero-shot split), so every "
               "row's label is checked; the noise slider flips that share of all labels first, "
               "to see how many of them the check finds.")
    st.fragment(progress, run_every=1.0 if job.running else None)(job)
    if job.check is not None:
        results(job)


def progress(job: CheckJob) -> None:
    """Polled each second while the job runs; one full redraw when it ends."""
    if job.error:
        safe.say("error", job.error)
    if job.running:
        if job.step == "checking" and st.button("Stop the check", key="check_stop"):
            job.stop()  # scores the epochs done so far
        st.progress(min(job.epoch / job.config.epochs, 1.0),
                    text=f"{job.step}: epoch {job.epoch} of {job.config.epochs}")
    elif st.session_state.get("check_drawn") != (id(job), job.step, job.result is None):
        st.session_state["check_drawn"] = (id(job), job.step, job.result is None)
        st.rerun()  # finished: draw the results once


def results(job: CheckJob) -> None:
    chk = job.check
    safe.say("markdown", check_labels.describe(chk), before=f"**{safe.plain(job.name)}.** ")
    st.caption(check_labels.SCORES)
    if "map" not in job.figures:
        last = chk.history[-1]
        rows = pd.Index(chk.frame["index"]).get_indexer(last.train_index)
        xy = check_map.layout_2d(last.train_embeddings, chk.config.seed)
        job.figures["map"] = check_map.check_map(
            xy, chk.frame.iloc[rows], chk.cutoff,
            f"Every checked row (PCA, last epoch) · top {chk.cutoff} suspects ringed")
    images, picked = chk.data.kind == "image", None
    if images:  # a hover label cannot hold an image: the component draws it from the sprite
        if "sprite" not in job.figures:
            job.figures["sprite"] = dict(check_map.sprite(chk.data.X), column=check_map.INDEX_COLUMN)
        picked = check_map.clicked_index(live_plot(job.figures["map"], "check_image_map",
                                                   sprite=job.figures["sprite"]))
    else:
        st.plotly_chart(job.figures["map"], key="check_map")
    if picked is not None:
        r = chk.frame[chk.frame["index"] == picked].iloc[0]
        st.image(check_map.thumbnail(chk.data.X[picked]), width=160,
                 caption=safe.plain(f"row {r['row']}: {r['given_label']} → {r['suggested_label']} "
                                    f"· score {r['score']:.3f}", 160))
    elif images:
        st.caption("Hover over a point on the map to see its image; click it to keep the image "
                   "below.")
    top = chk.frame.head(chk.cutoff)
    if chk.data.kind == "image" and len(top):
        st.plotly_chart(check_map.thumbnails(
            [chk.data.X[i] for i in top["index"][:16]],
            [f"{r}: {g}→{s}" for r, g, s in zip(top["row"], top["given_label"],
                                                top["suggested_label"])][:16]),
            key="check_thumbs")
    cols = [*check_labels.COLUMNS, *(["flipped"] if chk.injected else [])]
    st.dataframe(top[cols], hide_index=True, key="check_table")
    with tempfile.TemporaryDirectory() as tmp:
        check_labels.write_csv(chk, Path(tmp) / "s.csv")
        csv = (Path(tmp) / "s.csv").read_bytes()
    st.download_button("Download every row (CSV)", csv, "suspects.csv", "text/csv",
                       key="check_csv")
    clean_panel(job)


def clean_panel(job: CheckJob) -> None:
    chk = job.check
    a, b, c = st.columns([2, 2, 2])
    how = a.radio("Clean by", cleaning.HOWS, horizontal=True, key="check_how",
                  format_func=lambda h: {"drop": "dropping", "relabel": "relabelling"}[h])
    k = int(b.number_input("Top suspects to clean", 0, len(chk.frame), chk.cutoff, key="check_k"))
    if c.button("Clean and retrain", key="check_clean", disabled=job.running):
        job.clean(how, k)
        st.rerun()
    if job.result is None:
        return
    r = job.result
    base = r["r1"]["noisy"]
    st.dataframe(pd.DataFrame([{"labels": cleaning.VARIANTS[v], "R@1": cleaning.points([x]),
                                "gain (points)": "" if v == "noisy" else cleaning.gain([x], [base])}
                               for v, x in r["r1"].items()]), hide_index=True, key="check_r1")
    st.caption(cleaning.report([r]).splitlines()[0].rstrip(":") + ".")
    y, keep = cleaning.cleaned_labels(chk, cleaning.top_rows(chk, r["k"]), r["how"])
    suffix = clean_export.suffix(chk.config.data)
    with tempfile.TemporaryDirectory() as tmp:
        out = clean_export.export(chk.config.data, chk.data, y, keep, Path(tmp) / f"c{suffix}")
        raw = out.read_bytes()
    st.download_button(f"Download the cleaned data ({suffix})", raw,
                       f"{Path(job.name).stem}.cleaned{suffix}", key="check_cleaned")
