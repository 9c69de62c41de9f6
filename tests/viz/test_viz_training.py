"""pfml_core/viz/training.py: the map's frames keep each epoch's own view around its points,
and a click's selection (as the browser sends it) gives back the held-out rows."""
import numpy as np

from pfml_core.viz import training as viz


def test_clicked_rows_reads_every_form_the_browser_sends():
    sel = {"selection": {"points": [
        {"legendgroup": "held-out", "customdata": [42, 5]},          # plain list
        {"legendgroup": "held-out", "customdata": {"0": 7, "1": 6}},  # typed array sent as JSON
        {"legendgroup": "train", "customdata": [3, 1]},              # not a held-out point
        {"legendgroup": "held-out"},                                  # no customdata
        {"legendgroup": "held-out", "customdata": 9.0},               # a bare number
        {"legendgroup": "held-out", "customdata": {"x": 1}}]}}        # something else: ignored
    assert viz.clicked_rows(sel) == [42, 7, 9]
    assert viz.clicked_rows(sel, "train") == [3]
    assert viz.clicked_rows(None) == [] and viz.clicked_rows({}) == []


def test_each_frame_fits_its_own_points():
    meta = {"label": np.array([0, 0, 1, 1]), "group": np.array(["train"] * 4),
            "flipped": np.zeros(4, bool), "row": np.arange(4)}
    small = np.array([[0, 0], [0.01, 0.01], [0.02, 0], [0, 0.02]], np.float32)
    big = 100 * small
    f0, f1 = viz.map_frame(0, small, meta), viz.map_frame(1, big, meta)
    for f, xy in ((f0, small), (f1, big)):
        lo, hi = f.layout.xaxis.range
        assert lo < xy[:, 0].min() and hi > xy[:, 0].max()
        assert (xy[:, 0].max() - xy[:, 0].min()) / (hi - lo) > 0.8  # the points fill the view


def test_suspects_are_ringed_where_their_rows_are_in_every_frame():
    """Training points whose source row is a suspect get a ring that moves with them on the
    slider; held-out points with the same source row never do; hover says what is suspect."""
    import pandas as pd

    meta = {"label": np.array([0, 0, 1, 1, 0]), "group": np.array(["train"] * 4 + ["held-out"]),
            "flipped": np.zeros(5, bool), "row": np.array([0, 1, 2, 3, 0]),
            "source": np.array([10, 11, 12, 13, 11])}
    table = pd.DataFrame({"row": [11, 13, 99], "given_label": ["a<b>", "1", "0"],
                          "suggested_label": ["1", "0", "1"], "score": [0.5, 0.25, 0.1]})
    ringed = viz.with_suspects(meta, table)
    assert ringed["suspect"].tolist() == [False, True, False, True, False]
    xy0, xy1 = np.arange(10.0).reshape(5, 2), -np.arange(10.0).reshape(5, 2)
    frames = [viz.map_frame(0, xy0, ringed), viz.map_frame(1, xy1, ringed)]
    fig = viz.map_figure(frames, xy1, ringed, {"train": ["0", "1"], "held-out": ["0"]}, "PCA")
    ring = next(t for t in fig.data if t.name == "suspect label (2)")
    assert list(ring.x) == [-2.0, -6.0] and list(ring.y) == [-3.0, -7.0]
    i = list(fig.data).index(ring)
    assert len(frames[0].data) == len(fig.data) and list(frames[0].data[i].x) == [2.0, 6.0]
    assert list(ring.text) == ["row 11 · given a&lt;b&gt; → suggested 1 · score 0.500",
                               "row 13 · given 1 → suggested 0 · score 0.250"]
    plain = viz.map_figure([viz.map_frame(0, xy0, meta)], xy0, meta,
                           {"train": ["0", "1"], "held-out": ["0"]}, "PCA")
    assert not [t for t in plain.data if (t.name or "").startswith("suspect")]
