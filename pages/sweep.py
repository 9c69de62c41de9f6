"""Hyperparameter sweep: PFML over alpha, delta, delta_rep - delta and proxies per class by TPE
(pruning trials that fall behind), random or grid search in a background worker; the best
setting as a ready train command, a heatmap that shows the seeds' spread and the settings it
cannot tell from the best, Optuna's importance and contour, the paper's ablation curves."""
import streamlit as st

from pfml_core import lab
from pfml_core.lab import Lab, best
from pfml_core.viz import sweep as viz
from studio import lab_panel, safe
from studio.nav import use_app_navigation

MODES = {"tpe": "TPE", "random": "random", "grid": "grid"}
MODE_HELP = ("TPE (default) learns from the finished trials where to look next and prunes a trial "
             "whose R@1 after an epoch is below the median of the earlier trials at that epoch. "
             "Random draws points from the listed values; TPE and random run each on the first "
             "seed. Grid runs every point on every seed.")
PRUNED = ("{n} trial{s} pruned: TPE's median pruner stopped {them} after an epoch whose R@1 was "
          "below the median of the earlier trials at that epoch. Pruned trials are listed as pruned "
          "below and in the heatmap; their R@1, after fewer epochs, is left out of the heatmap's "
          "means, the contour, the importance and the best setting.")
IMPORTANCE = ("The share of R@1's variance over the finished trials each parameter explains (fANOVA). "
              "Few trials make it rough; on a grid with seeds, a parameter no more important than "
              "the seed is not shown to matter.")

use_app_navigation()  # first: see studio/nav.py
st.title("Hyperparameter sweep")
st.caption("The paper: best alpha near 3, delta flat over [0.1, 0.3], delta_rep > delta hurts, "
           "R@1 saturates near 15 proxies per class. Tune by looking, on your data.")

with st.form("sweep_form"):
    c1, c2, c3 = st.columns(3)
    data = c1.selectbox("Data", ["mnist5k", "digits"], key="sweep_data")
    path = c1.text_input("…or an upload's stored name, or a path under the data root",
                         key="sweep_path", help=lab_panel.DATA_HELP)
    mode = c1.radio("Search", list(MODES), format_func=MODES.get, horizontal=True,
                    key="sweep_mode", help=MODE_HELP)
    trials = c1.number_input("Trials (TPE, random)", 1, 200, 8, key="sweep_trials")
    alpha = c2.text_input("alpha", "1,3,5", key="sweep_alpha")
    delta = c2.text_input("delta", "0.1,0.2,0.3", key="sweep_delta")
    gap = c2.text_input("delta_rep − delta", "0", key="sweep_gap")
    proxies = c2.text_input("Proxies per class", "5", key="sweep_proxies")
    seeds = c3.text_input("Seeds", "0", key="sweep_seeds",
                          help="Grid: every point on each seed (3 seeds show the spread). "
                               "TPE and random: the first seed.")
    noise = c3.number_input("Label noise (%)", 0, 90, 0, key="sweep_noise")
    epochs = c3.number_input("Epochs", 1, 500, 3, key="sweep_epochs")
    batches = c3.number_input("Batches per epoch (0 = all)", 0, 10_000, 0, key="sweep_batches")
    go = st.form_submit_button("Run sweep", type="primary")
if go:
    p = lab.parse_list
    lab_panel.launch("sweep", lambda: lab.sweep_grid(
        lab_panel.dataset(path, data), p("alpha", alpha), p("delta", delta), p("delta_rep − delta", gap),
        p("proxies per class", proxies, int), p("seeds", seeds, int), mode=mode,
        n_trials=int(trials), noise=noise / 100,
        base={"epochs": int(epochs), "max_batches_per_epoch": int(batches) or None}),
        "sweep_grid", "Sweep")


@st.cache_data(max_entries=16, show_spinner=False)
def optuna_figures(url: str, grid_id: int, n_done: int, x: str, y: str | None):
    """Optuna's importance and contour (each a figure, or the one line why not), once per
    count of finished trials: fANOVA fits a forest, not something to redo every poll."""
    study = Lab(url).study(grid_id)
    why = viz.cannot_plot(study)
    importance = why or viz.importance_figure(study)
    if y is None:
        return importance, None
    return importance, viz.cannot_plot(study, [x, y]) or viz.contour_figure(study, x, y)


def show(where, fig, key: str) -> None:
    if isinstance(fig, str):
        where.caption(fig)
    else:
        where.plotly_chart(fig, key=key)


def best_panel(runs: list[dict], spec: dict) -> None:
    """The best setting in words and as a train command to copy."""
    st.subheader("Best setting")
    try:
        found = best.best_setting(viz.done(runs), spec)
    except ValueError as exc:
        st.info(str(exc))
        return
    safe.say("markdown", found["said"], before="**Best:** ")
    st.code(found["command"], language="bash", wrap_lines=True)


def results(grid: dict, frame) -> None:
    """The picked sweep's best setting, heatmap beside Optuna's contour and importance, the
    settings table, lines and every run (redrawn by lab_panel while it runs)."""
    runs = lab_panel.grid_runs(grid["id"])
    axes = [a for a in lab.SWEEP_AXES if a in frame and frame[a].nunique() > 1] or ["alpha"]
    best_panel(runs, grid["spec"])
    x, y = axes[0], None
    if len(axes) > 1:
        c1, c2 = st.columns(2)
        x = c1.selectbox("x axis", axes, 0, key="sweep_x")
        y = c2.selectbox("y axis", axes, 1, key="sweep_y")
    with lab_panel.store() as s:
        url = s.url
    importance, contour = optuna_figures(url, grid["id"], grid["counts"].get("done", 0), x, y)
    if y is not None:
        left, right = st.columns(2)
        left.plotly_chart(viz.settings_heatmap(runs, axes, x, y), key="sweep_heat")
        show(right, contour, "sweep_contour")
        st.caption(viz.tie_note(runs, axes))
    st.dataframe(viz.settings_table(runs, axes), key="sweep_settings_table", hide_index=True)
    if n := grid["counts"].get("pruned", 0):
        st.caption(PRUNED.format(n=n, s=" was" if n == 1 else "s were", them="it" if n == 1 else "them"))
    cols = st.columns(2)
    show(cols[0], importance, "sweep_importance")
    if not isinstance(importance, str):
        cols[0].caption(IMPORTANCE)
    for i, axis in enumerate(axes, start=1):
        cols[i % 2].plotly_chart(viz.sweep_line(frame, axis), key=f"sweep_line_{axis}")
    st.subheader("Every run")
    epochs = {r["id"]: r.get("progress", 0) for r in runs}  # where a pruned trial stopped
    st.dataframe(frame.assign(**{"epochs run": frame["run"].map(epochs)}) if "run" in frame else frame,
                 key="sweep_runs_table", hide_index=True)


lab_panel.results_panel("sweep", "sweep_grid", results)
