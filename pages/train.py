"""Train a model: PFML (or a baseline) on real data, with live loss / Recall@K curves, the
per-epoch UMAP of embeddings and proxies, and a query's nearest neighbours."""
import numpy as np
import pandas as pd
import streamlit as st

from pfml_core import data, training
from pfml_core.eval import neighbours, snapshot_points
from pfml_core.training import LOSSES, MODELS, TrainConfig, TrainJob
from pfml_core.viz import training as viz
from studio import cache
from studio.nav import use_app_navigation

JOB = "train_job"
use_app_navigation()  # first: see studio/nav.py
st.title("Train a model")
st.caption("Zero-shot protocol: the first half of the classes train, Recall@K is measured on "
           "the other half. Proxies are stars; flipped (noisy) training labels are ringed red.")


def data_source(col) -> str | None:
    choice = col.selectbox("Data", ["mnist5k", "digits", "upload"], key="train_data")
    if choice != "upload":
        return choice
    f = col.file_uploader("Features (.npz with X, y / .csv with a label column) or a .zip "
                          "of an image folder", type=["npz", "csv", "zip"], key="train_upload")
    if f is None:
        return None
    try:
        return str(data.store_upload(f.name, f.getvalue(), training.runs_dir() / "_uploads"))
    except ValueError as e:
        col.error(str(e))
        return None


def loss_params(col, loss: str) -> dict:
    out = {}
    for name, default in LOSSES[loss].default_params.items():
        if isinstance(default, float):
            out[name] = col.number_input(name, value=default, key=f"train_p_{loss}_{name}",
                                         format="%.3g")
        elif isinstance(default, int):
            out[name] = int(col.number_input(name, value=default, min_value=0,
                                             key=f"train_p_{loss}_{name}"))
    return out


def settings() -> tuple[TrainConfig | None, str]:
    c1, c2, c3 = st.columns(3)
    source = data_source(c1)
    model = c1.selectbox("Model", MODELS, key="train_model")
    loss = c2.selectbox("Loss", list(LOSSES), format_func=lambda k: LOSSES[k].label,
                        key="train_loss")
    params = loss_params(c2, loss)
    noise = c3.slider("Label noise (fraction flipped)", 0.0, 0.5, 0.0, 0.05, key="train_noise")
    epochs = c3.number_input("Epochs", 1, 500, 5, key="train_epochs")
    max_b = c3.number_input("Batches per epoch (0 = all)", 0, 10_000, 0, key="train_max_batches")
    method = c3.radio("Map", ["UMAP", "PCA"], horizontal=True, key="train_map_method")
    with st.expander("More settings"):
        a, b = st.columns(2)
        split = a.selectbox("Split", data.SPLITS, key="train_split")
        lr = a.number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.0e", key="train_lr")
        seed = b.number_input("Seed", 0, 10_000, 0, key="train_seed")
        subset = b.number_input("Evaluation subset", 50, 5000, 500, key="train_eval_subset")
    if source is None:
        return None, method
    return TrainConfig(data=source, split=split, model=model, loss=loss, loss_params=params,
                       noise=float(noise), epochs=int(epochs), lr=float(lr), seed=int(seed),
                       eval_subset=int(subset), max_batches_per_epoch=int(max_b) or None), method


def start(config: TrainConfig, method: str) -> None:
    try:
        config.validate()
        dataset = cache.train_dataset(config.data)
        data.split(dataset, config.split, config.seed)  # fail here, not in the thread
    except ValueError as e:
        st.error(str(e))
        return
    if method == "UMAP":
        cache.train_umap_warm_up()
    job = TrainJob(config, training.new_run_dir(config), method.lower(), dataset)
    st.session_state[JOB] = job.start()


def past_runs() -> None:
    listed = training.list_runs()
    if not listed:
        return
    with st.expander(f"Past runs ({len(listed)})"):
        names = {r["name"]: r for r in listed}
        pick = st.selectbox("Run", list(names), key="train_past", format_func=lambda n: (
            f"{n} · R@1 {names[n]['R@1']:.3f} · {names[n]['epochs']} epochs"))
        if st.button("Open", key="train_open"):
            method = st.session_state.get("train_map_method", "UMAP").lower()
            st.session_state[JOB] = TrainJob.from_run(names[pick]["path"], method).start()


config, method = settings()
b1, b2, _ = st.columns([1, 1, 6])
if b1.button("Start", type="primary", key="train_start", disabled=config is None):
    start(config, method)
job = st.session_state.get(JOB)
if b2.button("Stop", key="train_stop", disabled=job is None or job.done):
    job.stop()
past_runs()


def neighbours_view(job: TrainJob, snap, names) -> None:
    try:
        images = cache.train_dataset(job.config.data)
    except ValueError:
        return
    if images.kind != "image":
        return
    st.subheader("Nearest neighbours of a held-out query")
    picked = st.session_state.get("train_map_sel")
    rows = [p["customdata"][0] for p in (picked or {}).get("selection", {}).get("points", [])
            if p.get("customdata") and p.get("legendgroup") == "held-out"]
    q = st.number_input("Query (held-out sample #; or click a diamond in the map)", 0,
                        len(snap.labels) - 1, int(rows[0]) if rows else 0, key="train_query")
    nn = neighbours(snap.embeddings, int(q), 8)
    img = lambda r: images.X[snap.eval_index[r]]  # noqa: E731
    fig = viz.neighbours_figure(img(int(q)), [img(r) for r in nn],
                                [bool(snap.labels[r] == snap.labels[q]) for r in nn],
                                [names["held-out"][snap.labels[r]] for r in nn])
    st.plotly_chart(fig, key="train_nn_fig")


@st.fragment(run_every=1.0 if job is not None and job.running else None)
def live() -> None:
    job = st.session_state.get(JOB)
    if job is None:
        st.info("Choose data, model and loss, then press Start.")
        return
    if job.error:
        st.error(job.error)
    snaps = list(job.snapshots)
    epoch = snaps[-1].epoch if snaps else 0
    if job.running:
        i, n = job.progress
        st.progress(min(1.0, (epoch + (i / n if n else 0)) / job.config.epochs),
                    text=f"epoch {epoch + 1} of {job.config.epochs} · batch {i}/{n}")
    else:
        st.success(f"finished {epoch} epochs" + (f" · saved in {job.out_dir}" if job.out_dir else ""))
    if not snaps:
        return
    df = pd.DataFrame([{"epoch": s.epoch, "loss": s.loss, **s.metrics} for s in snaps])
    st.plotly_chart(viz.curves_figure(df), key="train_curves")
    try:
        names = data.split_class_names(cache.train_dataset(job.config.data).class_names, job.config.split)
    except ValueError:
        names = {g: [str(i) for i in range(100)] for g in ("train", "held-out")}
    _, meta = snapshot_points(snaps[-1])
    umap_ready = [s.epoch for s in snaps if s.epoch in job.layouts]
    if umap_ready and umap_ready[-1] == epoch:
        layouts, label = {e: job.layouts[e] for e in umap_ready}, "UMAP"
    else:
        layouts, label = {s.epoch: job.layout(s.epoch)[0] for s in snaps}, "PCA"
        if job.map_method == "umap":
            st.caption("UMAP is computing; PCA is shown meanwhile.")
    st.plotly_chart(viz.embedding_map_figure(layouts, meta, names, label), key="train_map",
                    on_select="rerun", selection_mode="points")
    st.session_state["train_map_sel"] = st.session_state.get("train_map")
    neighbours_view(job, snaps[-1], names)
    if not job.running and (label == "UMAP" or job.map_method == "pca") and st.session_state.get("train_live"):
        st.session_state["train_live"] = False
        st.rerun()  # stop polling: redraw once without run_every
    st.session_state["train_live"] = job.running or label != "UMAP" and job.map_method == "umap"


live()
