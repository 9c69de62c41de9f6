"""Label-noise lab: losses x noise rates x seeds trained in a background worker; measured
R@1 vs noise beside the paper's 20%-noise table, memorization curves over epochs, and the
training labels each run finds suspect (beside cleanlab's ranking)."""
import streamlit as st

from pfml_core import lab
from pfml_core.viz import lab as viz
from studio import cache, lab_panel, lab_suspects
from studio.nav import use_app_navigation

use_app_navigation()  # first: see studio/nav.py
st.title("Label-noise lab")
st.caption("The paper's strongest claim: at 20% flipped labels PFML beats Proxy Anchor by "
           f"+{lab.noise_gain()['CUB']} (CUB) / +{lab.noise_gain()['Cars']} (Cars) R@1. "
           "Check it on your data. Grids run in a background worker and are kept in the run store.")
labels = cache.lab_loss_labels()
regime = lab.default_grid()
st.info(f"**Default grid** (MNIST-5k, PFML vs Proxy Anchor, 3 seeds). {regime['why']}")

with st.form("noise_form"):
    c1, c2, c3 = st.columns(3)
    data = c1.selectbox("Data", ["mnist5k", "digits"], key="noise_data")
    path = c1.text_input("…or an upload's stored name, or a path under the data root",
                         key="noise_path", help=lab_panel.DATA_HELP)
    models = ["mlp", "cnn", "auto"]
    model = c1.selectbox("Model", models, models.index(regime["base"]["model"]), key="noise_model")
    losses = c2.multiselect("Losses", list(labels), regime["losses"],
                            format_func=labels.get, key="noise_losses")
    rates = c2.multiselect("Noise rates (%)", [0, 5, 10, 20, 30, 40],
                           [round(r * 100) for r in regime["noise_rates"]], key="noise_rates")
    seeds = c3.text_input("Seeds", ",".join(map(str, regime["seeds"])), key="noise_seeds")
    epochs = c3.number_input("Epochs", 1, 500, regime["base"]["epochs"], key="noise_epochs")
    batches = c3.number_input("Batches per epoch (0 = all)", 0, 10_000, 0, key="noise_batches")
    go = st.form_submit_button("Run grid", type="primary")
if go:
    base = {**regime["base"], "model": model, "epochs": int(epochs),
            "max_batches_per_epoch": int(batches) or None}
    lab_panel.launch("noise", lambda: lab.noise_grid(
        lab_panel.dataset(path, data), losses, [r / 100 for r in rates], lab.parse_list("seeds", seeds, int),
        base=base, parallel=regime["parallel"]), "noise_grid")


def results(grid: dict, frame) -> None:
    """The picked grid's charts and tables (redrawn by lab_panel while it runs)."""
    agg = lab.aggregate(frame, ["loss", "noise"], lab.REPORTED)
    c1, c2 = st.columns(2)
    c1.plotly_chart(viz.noise_figure(agg, "R@1", labels), key="noise_r1")
    c2.plotly_chart(viz.noise_figure(agg, "R@2", labels), key="noise_r2")
    st.markdown(lab.gain_text(agg, labels))
    runs = lab_panel.grid_runs(grid["id"])
    curves = lab.curves_frame(runs)
    summary = lab.curves_summary(curves)
    noisy = sorted({n for n in summary.get("noise", []) if n > 0})
    st.subheader("Memorization: how each loss treats the flipped labels, epoch by epoch")
    if noisy:
        at = st.select_slider("Noise rate", noisy, noisy[-1], format_func="{:.0%}".format,
                              key="noise_curve_rate") if len(noisy) > 1 else noisy[0]
        st.plotly_chart(viz.memorization_figure(summary, at, labels), key="noise_memo")
        st.plotly_chart(viz.margin_figure(summary, at, labels), key="noise_margin")
        st.caption(lab.MEMORIZATION_NOTE)
    else:
        st.info("Memorization curves appear once a run with flipped labels has finished.")
    st.download_button("Download curves CSV", curves.to_csv(index=False),
                       f"grid_{grid['id']}_curves.csv", "text/csv", key="noise_curves_csv")
    st.subheader("Suspect labels: which training labels are probably wrong?")
    st.caption(lab.suspects.HOW)
    lab_suspects.suspects_panel(runs, grid_detection=lab.detection_table(agg))
    with st.expander("Every run, and flip distances"):
        c3, c4 = st.columns(2)
        c3.plotly_chart(viz.noise_figure(agg, "flip_ratio", labels), key="noise_flip")
        c4.plotly_chart(viz.noise_figure(agg, "W2", labels), key="noise_w2")
        st.caption("flip_ratio: flipped samples' distance to their labelled (wrong) class centroid "
                   "over that to their true class (> 1: they stayed with their true class). "
                   "W2: proxy-to-data Wasserstein-2 distance (proxy losses only).")
        st.dataframe(agg, key="noise_agg_table")
        st.dataframe(frame, key="noise_runs_table")


lab_panel.results_panel("noise", "noise_grid", results)
st.subheader("Paper: 20% label noise, ResNet-50 (mean of 5 runs)")
p1, p2 = st.columns(2)
p1.plotly_chart(viz.paper_noise_figure(), key="noise_paper_fig")
p2.dataframe(cache.lab_paper_noise_table(), key="noise_paper_table")
