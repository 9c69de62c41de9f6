"""Train a model: PFML (or a baseline) on real data, with live loss / Recall@K curves, the
per-epoch map of embeddings and proxies (PCA at once, UMAP from a warm worker) and a query's
nearest neighbours. Training runs in its own process; this page only polls it."""
from pathlib import Path

import streamlit as st

from pfml_core import data, lab, training
from pfml_core.eval import neighbours
from pfml_core.training import LOSSES, MODELS, TrainConfig, TrainJob
from pfml_core.viz import training as viz
from studio import cache, safe, train_session
from studio import check_labels as check_ui
from studio.live_plot import live_plot
from studio.nav import use_app_navigation

use_app_navigation()  # first: see studio/nav.py
st.title("Train a model")
st.caption("Zero-shot protocol: the first half of the classes train, Recall@K is measured on "
           "the other half. Proxies are stars; flipped (noisy) training labels are ringed red.")
maps = cache.train_map_service()  # the UMAP worker warms up while settings are chosen
view = train_session.view()
view.polling = view.active  # status() below polls until the next full run; set before it


def data_source(col) -> str | None:
    choice = col.selectbox("Data", ["mnist5k", "digits", "upload"], key="train_data")
    if choice != "upload":
        return choice
    f = col.file_uploader("Features (.npz with X, y / .csv with a label column) or a .zip "
                          "of an image folder", type=["npz", "csv", "zip"], key="train_upload")
    if f is None:
        return None
    try:  # checked before it is kept; old uploads expire (pfml_core.data.access)
        stored = data.store_upload(f.name, f.getvalue(), training.runs_dir() / data.UPLOADS)
    except ValueError as e:
        safe.say("error", e, where=col)
        return None
    col.caption(f"Stored as `{stored.name}`: the lab pages open it by that name.")
    return str(stored)


def loss_params(col, loss: str) -> dict:
    out, maxima = {}, LOSSES[loss].maxima
    for name, default in LOSSES[loss].default_params.items():
        if isinstance(default, float):
            out[name] = col.number_input(name, value=default, max_value=maxima.get(name),
                                         key=f"train_p_{loss}_{name}", format="%.3g")
        elif isinstance(default, int):
            out[name] = int(col.number_input(name, value=default, min_value=0,
                                             max_value=maxima.get(name),
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
    method = c3.radio("Map", ["UMAP", "PCA"], horizontal=True, key="train_map_method").lower()
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
        data.split(dataset, config.split, config.seed)  # fail here, not in the training process
        config.check_budget(dataset)  # its memory and disk, before a process starts
        train_session.max_jobs()  # a bad operator setting: say so here
    except ValueError as e:
        safe.say("error", e)
        return
    try:  # a full or read-only runs folder: one line (pfml_core.data.faults)
        job = view.start(lambda: TrainJob(config, training.new_run_dir(config), method, dataset,
                                          maps if method == "umap" else None,
                                          heartbeat_s=train_session.HEARTBEAT_S))
    except ValueError as e:
        safe.say("error", e)
        return
    if job is None:
        st.warning(f"The server is already training {train_session.max_jobs()} models for other "
                   "visitors (on this runs folder), the most it runs at once. Press Start again "
                   "when one ends.")
        return
    st.rerun()  # redraw with Start disabled while the job runs


def past_runs(method: str) -> None:
    listed = training.list_runs()
    if not listed:
        return
    with st.expander(f"Past runs ({len(listed)})"):
        names = {r["name"]: r for r in listed}
        pick = st.selectbox("Run", list(names), key="train_past", format_func=lambda n: (
            f"{n} · R@1 {names[n]['R@1']:.3f} · {names[n]['epochs']} epochs"))
        if st.button("Open", key="train_open", disabled=view.running):
            try:
                job = TrainJob.from_run(names[pick]["path"], method, maps if method == "umap"
                                        else None, heartbeat_s=train_session.HEARTBEAT_S)
            except ValueError as e:
                safe.say("error", e)
                return
            view.replace(job.start())
            st.rerun()


@st.fragment(run_every=2.0 if maps.state == "warming" else None)
def where(device: str, method: str, state: str) -> None:
    """Where training runs, and the UMAP worker's state (polled while it warms up)."""
    if maps.state != state:
        st.rerun()  # warm now: redraw (and stop polling)
    umap = {"ready": "UMAP ready", "warming": "UMAP warming up (once per server; PCA is "
            "shown meanwhile)"}.get(state, f"UMAP {state}")
    st.caption(f"Training runs on: {cache.train_device(device)}"
               + (f" · {umap}" if method == "umap" else ""))


config, method = settings()
check_ui.preview(config.data if config else None, config.split if config else "zero-shot")
where(config.device if config else "auto", method, maps.state)
with st.container():  # one element, whatever it holds: the live charts below keep their place
    b1, b2, b3, _ = st.columns([1, 1, 2, 4])
    if b1.button("Start", type="primary", key="train_start", disabled=config is None or view.running):
        start(config, method)
    if b2.button("Stop", key="train_stop", disabled=not view.running):
        view.job.stop()
    check_ui.button(b3, config)
    past_runs(method)
    check_ui.section()


@st.fragment(run_every=1.0 if view.polling else None)
def status() -> None:
    """Polled every second while the run trains or maps: the heartbeat, the progress line and
    the live charts, which change in place; only this fragment reruns, so the rest of the page
    is neither rebuilt nor sent again. Start and finish redraw the whole page once."""
    job = view.job
    if job is None:
        st.info("Choose data, model and loss, then press Start.")
        return
    job.touch()
    if view.active != view.polling:
        st.rerun()  # it started or ended: the finished run's charts have a slider
    where = f" · on {job.device}" if job.device else ""
    # lines that come and go sit in slots that are always there: a line added above the live
    # charts would move them, and a moved component is mounted again (plotly.js loaded again)
    said = st.container()
    if job.error:
        safe.say("error", job.error, where=said)
    if job.map_error:
        safe.say("warning", job.map_error, where=said)
    epoch = job.snapshots[-1].epoch if job.snapshots else 0
    if job.running:
        i, n = job.progress
        now = f"epoch {epoch + 1} of {job.config.epochs} · batch {i}/{n}" if epoch < \
            job.config.epochs else f"{epoch} epochs done, finishing"
        if not job.snapshots:
            now = "starting: loading the data and evaluating the untrained model (epoch 0)"
        st.progress(min(1.0, (epoch + (i / n if n else 0)) / job.config.epochs), text=now + where)
    else:
        saved = f" · saved in {safe.plain(Path(job.out_dir).name)}" if job.out_dir else ""  # no server path
        st.success(f"{'stopped after' if job.stopped else 'finished'} {epoch} epochs{where}{saved}")
    note, (shown, layouts) = st.empty(), job.map_view()
    if job.map_method == "umap" and job.maps_pending and job.snapshots:
        if shown == "PCA":
            note.caption("UMAP is computing; PCA is shown meanwhile.")
        elif max(layouts) < epoch:
            note.caption(f"UMAP of epoch {epoch} is computing.")
    if view.polling:  # from Start on: a chart frame's first load costs the browser about a
        # CPU-second, better spent while the training process starts than during an epoch
        names, images = class_names(job.config)
        live_plot(view.curves(), key="train_live_curves")
        live_plot(view.live_map(names, images.sources if images is not None else None),
                  key="train_live_map", on_click=lambda: pick_query("train_live_map"))
        if job.snapshots:
            neighbours_view(job.snapshots[-1], names, images)


def class_names(config: TrainConfig) -> tuple[dict, object | None]:
    try:
        ds = cache.train_dataset(config.data)
    except ValueError:
        return {g: [str(i) for i in range(1000)] for g in ("train", "held-out")}, None
    return data.split_class_names(ds.class_names, config.split), ds


def pick_query(key: str = "train_map") -> None:
    """A click on a held-out diamond in the map (the live one or the finished run's) makes it
    the neighbour query."""
    rows = viz.clicked_rows(st.session_state.get(key))
    if rows:
        st.session_state["train_query"] = rows[0]


def neighbours_view(snap, names, images) -> None:
    if images is None or images.kind != "image":
        return
    st.subheader("Nearest neighbours of a held-out query")
    if st.session_state.get("train_query", 0) >= len(snap.labels):
        st.session_state["train_query"] = 0  # a reopened run with fewer held-out samples
    q = st.number_input("Query (held-out sample #; or click a diamond in the map)", 0,
                        len(snap.labels) - 1, key="train_query")

    def build():
        nn = neighbours(snap.embeddings, int(q), 8)
        img = lambda r: images.X[snap.eval_index[r]]  # noqa: E731
        return viz.neighbours_figure(img(int(q)), [img(r) for r in nn],
                                     [bool(snap.labels[r] == snap.labels[q]) for r in nn],
                                     [names["held-out"][snap.labels[r]] for r in nn])

    # not a live chart: measured, its small images cost chromium no more remounted than redrawn
    st.plotly_chart(view.neighbours(snap.epoch, int(q), build, view.polling), key="train_nn_fig")


status()
if not view.polling and view.job is not None and view.job.snapshots:  # finished: every epoch
    names, images = class_names(view.job.config)
    st.plotly_chart(view.curves(), key="train_curves")
    ring = st.toggle("Ring suspect labels", value=True, key="train_ring", help=lab.suspects.HOW)
    suspects = view.suspects(names) if ring else None
    fig = view.map_figure(names, images.sources if images is not None else None, suspects)
    st.plotly_chart(fig, key="train_map", on_select=pick_query, selection_mode="points")
    if suspects is not None:  # the map shows a sample of the training points, not every one
        shown = sum(len(t.x) for t in fig.data if t.name.startswith("suspect label"))
        st.caption(f"Ringed in black: {shown} of the {len(suspects)} training labels this run "
                   "itself finds probably wrong (mean label margin below zero up to R@1's peak); "
                   "the others are not among the map's points. Check my labels checks every "
                   "row of the data.")
    neighbours_view(view.job.snapshots[-1], names, images)
