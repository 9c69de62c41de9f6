"""Class names, file names and loss names from data are shown as text (issue 18, item 2):
every figure builder puts them into trace names, hover templates and subplot titles with no
markup Plotly would draw (<a href>, <span style>, <b>), no %{...} it would fill and no $...$
it would typeset, and each reads back, entities decoded, as the name itself. The noise lab's
suspect captions (Streamlit Markdown) show the names with every Markdown character escaped."""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from pfml_core.viz import lab as viz_lab
from pfml_core.viz import training as viz
from pfml_core.viz.text import text

LINK = '<a href="https:evil.example" target="_blank">Free exam answers'
SPAN = '<span style="font-size:90px;fill:red">HACKED'
IMAGE, RED, TEX, TEMPLATE = "![pixel](https:evil.example)", ":red[RED]", "$x^2$", "%{customdata[0]}"
HOSTILE = [LINK, SPAN, IMAGE, RED, TEX, TEMPLATE]
OURS = re.compile(r"<extra></extra>|<br>|%\{[^{}%]*\}")  # the figure's own markup and fields


def inert(s: str) -> bool:
    """No tag, template or TeX of the data's left once the figure's own markup is taken out."""
    rest = OURS.sub("", s)
    return "<" not in rest and "%{" not in rest and "$" not in rest


def test_text_escapes_markup_templates_and_tex():
    assert text(LINK) == '&lt;a href="https:evil.example" target="_blank"&gt;Free exam answers'
    assert text("%{x} costs $5 & <b>") == "&#37;{x} costs &#36;5 &amp; &lt;b&gt;"
    assert text(3) == "3" and text("cats") == "cats"
    for name in HOSTILE:
        assert inert(text(name)) and html.unescape(text(name)) == name


def _meta(n_classes: int) -> dict:
    labels = np.tile(np.arange(n_classes), 2)
    groups = ["train"] * n_classes + ["held-out"] * n_classes
    return {"label": np.concatenate([labels, np.arange(n_classes)]),
            "group": np.array(groups + ["proxy"] * n_classes),
            "flipped": np.zeros(3 * n_classes, bool), "row": np.arange(3 * n_classes)}


def test_map_legend_and_hover_show_class_names_as_text():
    names = {"train": [LINK, SPAN, IMAGE], "held-out": [RED, TEX, TEMPLATE]}
    meta = _meta(3)
    xy = np.random.default_rng(0).normal(size=(len(meta["label"]), 2))
    fig = viz.embedding_map_figure({0: xy, 1: xy}, meta, names)
    traces = {t.name: t for t in fig.data if t.legendgroup is not None}  # not the flipped ring
    assert all(inert(n) and inert(t.hovertemplate) for n, t in traces.items()), traces
    for group, cls in [("train", LINK), ("train", IMAGE), ("proxy", SPAN),
                       ("held-out", RED), ("held-out", TEX), ("held-out", TEMPLATE)]:
        t = traces[f"{group} {text(cls)}"]  # reads back as the name itself (below)
        assert f"class {text(cls)} · row" in t.hovertemplate and html.unescape(t.name) == f"{group} {cls}"


def test_neighbour_titles_show_class_names_as_text():
    img = np.zeros((1, 4, 4))
    fig = viz.neighbours_figure(img, [img, img], [True, False], [LINK, SPAN])
    titles = [a.text for a in fig.layout.annotations]
    assert all(inert(t) for t in titles), titles
    assert [html.unescape(t) for t in titles] == ["query", f"✓ {LINK}", f"✗ {SPAN}"]


def test_lab_figures_show_loss_names_as_text():
    agg = pd.DataFrame({"loss": [LINK, LINK, SPAN], "noise": [0.0, 0.2, 0.2], "R@1 mean": [0.9, 0.8, 0.7],
                        "R@1 std": [0.0, 0.1, 0.1], "n": [1, 1, 1]})
    names = {html.unescape(t.name) for t in viz_lab.noise_figure(agg).data}
    assert names == {LINK, SPAN}
    summary = pd.DataFrame([{"loss": loss, "noise": 0.2, "epoch": e, **{
        f"{c} {s}": 0.1 for c in ("R@1", "memorized", "margin_clean", "margin_flipped")
        for s in ("mean", "std")}} for loss in (TEX, SPAN) for e in (0, 1, 2)])
    memo = viz_lab.memorization_figure(summary, 0.2)
    margin = viz_lab.margin_figure(summary, 0.2, labels={SPAN: LINK})
    strings = [t.name for f in (memo, margin) for t in f.data] + [a.text for a in margin.layout.annotations]
    assert all(inert(s) for s in strings), strings
    assert {html.unescape(t.name) for t in memo.data} == {TEX, SPAN}
    assert {html.unescape(a.text) for a in margin.layout.annotations} == {TEX, LINK}
    assert f"{SPAN}: flipped" in {html.unescape(t.name) for t in margin.data}


def _suspects_page():
    import pandas as pd

    from studio import lab_suspects

    names = ["![pixel](https:evil.example)", ":red[RED]", "$x^2$",
             '<img src="https://evil.example/x.png">']
    top = pd.DataFrame({"row": [0, 1], "given_label": names[:2], "suggested_label": names[2:],
                        "score": [0.5, 0.25], "flipped": [True, False]})
    lab_suspects._show(top, "digits", "t")


def test_suspect_titles_are_text():
    at = AppTest.from_function(_suspects_page, default_timeout=60).run()
    assert not at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert [html.unescape(s.replace("&#37;", "%")) for s in titles] == [
        "#0: ![pixel](https:evil.example) → $x^2$ · 0.500 · flipped",
        '#1: :red[RED] → <img src="https://evil.example/x.png"> · 0.250']  # the characters they are
    assert all("<" not in s for s in titles)  # no tag reaches Plotly's HTML labels
    assert sum(d["type"] == "image" for d in fig["data"]) == 2