"""pfml_core.eval.label_margin and pfml_core.lab.suspects: margins against hand-placed
points, the area-under-the-margin score and its window, the detection figures against a
case counted by hand, cleanlab's baseline computed two ways, the CSV table, the ETA."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pfml_core.eval import label_margin as lm
from pfml_core.lab import runtime, suspects
from tests.lab_fakes import fake_margin, margins


def test_class_similarity_nearest_proxy_and_centroid():
    emb = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    proxies = np.array([[1, 0], [0, 2], [-1, 0]], dtype=float)  # class 0: p0, p2; class 1: p1
    sim = lm.class_similarity(emb, np.array([0, 1, 0]), 2, proxies, np.array([0, 1, 0]))
    s = np.sqrt(0.5)
    assert np.allclose(sim, [[1, 0], [0, 1], [s, s]])  # max over a class's proxies
    # no proxies: centroids of the given labels, L2-normalised (class 1 = rows 1 and 2)
    cen = lm.class_similarity(emb, np.array([0, 1, 1]), 3)
    c1 = np.array([1, 1 + 1 / s]) / np.linalg.norm([1, 1 + 1 / s])  # mean of (0,1), (s,s)
    assert np.allclose(cen[:, 1], [[1, 0], [0, 1], [s, s]] @ c1)
    assert np.allclose(cen[:, 0], [1, 0, s]) and np.all(cen[:, 2] == -1)  # class 2: no anchor


def test_margin_and_rival_by_hand():
    sim = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.8], [0.4, 0.4, 0.0]])
    margin, rival = lm.margin_and_rival(sim, np.array([0, 0, 1]))
    assert np.allclose(margin, [0.4, -0.7, 0.0]) and list(rival) == [2, 2, 0]
    m1, r1 = lm.margin_and_rival(np.ones((2, 1)), np.array([0, 0]))
    assert np.isnan(m1).all() and list(r1) == [-1, -1]


def test_margins_round_trip_through_run_folder_arrays():
    hist = [margins(e, 0.25) for e in range(3)]
    back = lm.from_arrays(lm.to_arrays(hist))
    assert len(back) == 3 and back[0].sim is None and np.array_equal(back[2].sim, hist[2].sim)
    for a, b in zip(hist, back):
        assert np.array_equal(a.margin, b.margin) and np.array_equal(a.rival, b.rival)
        assert np.array_equal(a.flipped, b.flipped) and np.array_equal(a.index, b.index)
    assert lm.from_arrays({"emb": np.zeros(1)}) is None


def test_detection_on_a_case_counted_by_hand():
    # flipped scores {0.9, 0.4}, clean {0.5, 0.3, 0.1}: 5 of the 6 (flipped, clean) pairs are
    # ordered right -> AUROC 5/6; the top 2 are 0.9 (flipped) and 0.5 (clean) -> precision 1/2
    d = suspects.detection([0.9, 0.5, 0.4, 0.3, 0.1], [1, 0, 1, 0, 0])
    assert d == {"auroc": pytest.approx(5 / 6), "precision": 0.5, "n_flipped": 2}
    tie = suspects.detection([0.5, 0.5, 0.1], [1, 0, 0])  # a tie counts one half
    assert tie["auroc"] == pytest.approx(0.75)
    assert np.isnan(suspects.detection([0.1, 0.2], [0, 0])["auroc"])


def _rm(margin_rows, r1, labels=(0, 1, 2, 0), rivals=None, known=True):
    """A RunMargins of 4 samples with the given per-epoch margins."""
    labels = np.array(labels)
    out = []
    for e, m in enumerate(margin_rows):
        rival = np.array(rivals[e]) if rivals is not None else (labels + 1) % 3
        out.append(lm.TrainMargins(np.array(m, dtype=np.float32), rival, np.eye(3)[labels],
                                   labels, labels, np.array([0, 1, 0, 0], bool), np.arange(10, 14)))
    return suspects.RunMargins(out, list(r1), known, ["a", "b", "c"])


def test_score_averages_the_window_and_suggests_the_usual_rival():
    rm = _rm([[0.2, -0.4, 0.1, -0.1], [0.3, -0.2, 0.1, 0.3], [0.4, 0.6, 0.1, 0.5]],
             r1=[0.8, 0.9, 0.7], rivals=[[1, 2, 0, 1], [1, 2, 0, 2], [1, 0, 0, 2]])
    s, suggested, k = suspects.score(rm)  # peak R@1 at epoch 2 -> epochs 1-2
    assert k == 2 and np.allclose(s, [-0.25, 0.3, -0.1, -0.1])
    assert list(suggested) == [0, 2, 2, 0]  # own label where the mean margin > 0, else the rival
    s_all, _, k_all = suspects.score(rm, "all")
    assert k_all == 3 and np.allclose(s_all, -np.mean([[0.2, -0.4, 0.1, -0.1], [0.3, -0.2, 0.1, 0.3],
                                                        [0.4, 0.6, 0.1, 0.5]], axis=0))
    assert suspects.score(rm, 1)[2] == 1 and suspects.score(rm, 99)[2] == 3
    # "peak" ends at the last epoch within 3 R@1 points of the best, not at the best itself
    assert suspects.window_epochs([0.9, 0.875, 0.86]) == 2
    assert suspects.window_epochs([0.80, 0.85, 0.84, 0.86, 0.70]) == 4
    assert suspects.window_epochs([0.89, 0.86, 0.91, 0.88, 0.88, 0.89, 0.87, 0.87]) == 6
    with pytest.raises(ValueError, match="window"):
        suspects.score(rm, 0)


def test_table_ranks_names_and_flips_only_where_known():
    rm = _rm([[0.2, -0.4, 0.1, -0.1]], r1=[0.8])
    t = suspects.table(rm, with_cleanlab=False)
    assert list(t.columns) == ["row", "given_label", "suggested_label", "score", "flipped"]
    assert list(t["row"]) == [11, 13, 12, 10] and list(t["score"]) == pytest.approx([0.4, 0.1, -0.1, -0.2])
    assert list(t["given_label"]) == ["b", "a", "c", "a"] and t["suggested_label"][0] == "c"
    assert list(t["flipped"]) == [True, False, False, False]
    unknown = suspects.table(_rm([[0.2, -0.4, 0.1, -0.1]], [0.8], known=False), with_cleanlab=False)
    assert "flipped" not in unknown


def test_write_csv_top_and_all(tmp_path):
    t = suspects.table(_rm([[0.2, -0.4, 0.1, -0.1]], r1=[0.8]), with_cleanlab=False)
    assert suspects.write_csv(t, tmp_path / "a.csv", top=2) == 2
    assert suspects.write_csv(t, tmp_path / "b.csv", top=1000) == 4  # more than the data: all
    back = pd.read_csv(tmp_path / "b.csv")
    assert list(back.columns) == ["row", "given_label", "suggested_label", "score", "flipped"]
    assert list(back["row"]) == list(t["row"])


def test_cleanlab_baseline_is_cleanlab_on_out_of_fold_probabilities():
    from cleanlab.rank import get_label_quality_scores

    rng = np.random.default_rng(0)
    n, C = 200, 4
    true = rng.integers(0, C, n)
    sim = np.eye(C)[true] * 0.6 + rng.normal(0, 0.1, (n, C))
    labels, flipped = true.copy(), np.arange(n) < 30
    labels[flipped] = (true[flipped] + 1) % C
    m, rival = lm.margin_and_rival(sim, labels)
    rm = suspects.RunMargins([lm.TrainMargins(m, rival, sim, labels, true, flipped, np.arange(n))],
                             [0.5], True)
    score, issues = suspects.cleanlab_score(rm)
    probs = suspects.out_of_fold_probs(sim, labels)
    assert np.allclose(probs.sum(axis=1), 1)
    assert np.allclose(score, 1 - get_label_quality_scores(labels, probs))
    assert suspects.detection(score, flipped)["auroc"] > 0.9 and 10 <= issues <= 60
    summary = suspects.summary(rm)
    assert summary["cleanlab_auroc"] == pytest.approx(suspects.detection(score, flipped)["auroc"])
    assert summary["suspect_auroc"] == pytest.approx(suspects.detection(-m, flipped)["auroc"])


def test_fake_run_margins_are_what_lab_fakes_says():
    m = margins(2, 0.25)
    assert m.flipped.sum() == 10 and np.allclose(m.margin, fake_margin(2, m.flipped))
    assert np.allclose(lm.margin_and_rival(m.sim, m.labels)[0], m.margin, atol=1e-6)


def _run(status, epochs=10, started=None, finished=None, progress=None):
    return {"status": status, "config": {"epochs": epochs}, "started": started,
            "finished": finished, "progress": progress}


def test_eta_from_finished_runs_and_from_progress():
    now = 1000.0
    runs = [_run("done", 10, 0, 100), _run("done", 10, 100, 300),  # 300 s / 20 epochs: 15 s each
            _run("running", 10, 900, progress=3), _run("queued", 20)]
    assert runtime.eta(runs, now) == pytest.approx((150 - 100) + 15 * 20)
    assert runtime.eta(runs, now, parallel=2) == pytest.approx((50 + 300) / 2)
    early = [_run("running", 10, 960, progress=2), _run("queued", 10)]  # 40 s for 2 epochs
    assert runtime.eta(early, now) == pytest.approx((200 - 40) + 200)
    assert runtime.eta([_run("running", 10, 990, progress=0)], now) is None
    assert runtime.eta([_run("done", 10, 0, 100)], now) == 0.0


def test_stored_runs_put_pfml_at_the_highest_noise_first():
    def run(i, loss, noise, seed, status="done", kept=True):
        return {"id": i, "status": status, "params": {"loss": loss, "noise": noise, "seed": seed},
                "metrics": {"suspect_epochs": 3} if kept else {"R@1": 0.5}}
    runs = [run(1, "proxy_anchor", 0.2, 0), run(2, "pfml", 0.0, 0), run(3, "pfml", 0.2, 1),
            run(4, "pfml", 0.2, 0), run(5, "pfml", 0.4, 0, status="running"), run(6, "pfml", 0.4, 1, kept=False)]
    assert list(suspects.stored_runs(runs)) == [
        "run 4: pfml · 20% noise · seed 0", "run 3: pfml · 20% noise · seed 1",
        "run 2: pfml · 0% noise · seed 0", "run 1: proxy_anchor · 20% noise · seed 0"]
