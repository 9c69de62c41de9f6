"""Hyperparameter sweep: PFML over alpha, delta, delta_rep - delta and proxies per class
(grid or random search) in a background worker; heatmaps and line plots of R@1 with the
paper's ablation curve beside the measured one."""
import streamlit as st

from pfml_core import lab
from pfml_core.viz import lab as viz
from studio import lab_panel
from studio.nav import use_app_navigation

use_app_navigation()  # first: see studio/nav.py
st.title("Hyperparameter sweep")
st.caption("The paper: best alpha near 3, delta flat over [0.1, 0.3], delta_rep > delta hurts, "
           "R@1 saturates near 15 proxies per class. Tune by looking, on your data.")

with st.form("sweep_form"):
    c1, c2, c3 = st.columns(3)
    data = c1.selectbox("Data", ["mnist5k", "digits"], key="sweep_data")
    path = c1.text_input("…or an upload's stored name, or a path under the data root",
                         key="sweep_path", help=lab_panel.DATA_HELP)
    mode = c1.radio("Search", ["grid", "random"], horizontal=True, key="sweep_mode")
    trials = c1.number_input("Random draws", 1, 200, 8, key="sweep_trials")
    alpha = c2.text_input("alpha", "1,3,5", key="sweep_alpha")
    delta = c2.text_input("delta", "0.1,0.2,0.3", key="sweep_delta")
    gap = c2.text_input("delta_rep − delta", "0", key="sweep_gap")
    proxies = c2.text_input("Proxies per class", "5", key="sweep_proxies")
    seeds = c3.text_input("Seeds", "0", key="sweep_seeds")
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


def results(grid: dict, frame) -> None:
    """The picked sweep's heatmaps, lines and tables (redrawn by lab_panel while it runs)."""
    axes = [a for a in lab.SWEEP_AXES if a in frame and frame[a].nunique() > 1] or ["alpha"]
    if len(axes) > 1:
        c1, c2 = st.columns(2)
        x = c1.selectbox("Heatmap x", axes, 0, key="sweep_x")
        y = c2.selectbox("Heatmap y", axes, 1, key="sweep_y")
        fig = (viz.sweep_scatter if grid["spec"].get("mode") == "random" else viz.sweep_heatmap)
        st.plotly_chart(fig(frame, x, y), key="sweep_heat")
    cols = st.columns(min(len(axes), 2))
    for i, axis in enumerate(axes):
        cols[i % len(cols)].plotly_chart(viz.sweep_line(frame, axis), key=f"sweep_line_{axis}")
    st.dataframe(lab.aggregate(frame, list(lab.SWEEP_AXES), ("R@1", "R@2", "seconds")),
                 key="sweep_agg_table")
    with st.expander("Every run"):
        st.dataframe(frame, key="sweep_runs_table")


lab_panel.results_panel("sweep", "sweep_grid", results)
