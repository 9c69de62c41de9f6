"""AppTest of pages/train.py against the run budget (issue 18 item 1): the loss widgets stop
at the loss's own bounds, a run over PFML_MAX_RUN_DISK is refused with one line before any
process starts, and a past run over PFML_MAX_RUN_MEMORY is not opened."""
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from pfml_core.training.config import TrainConfig

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "train.py")


def test_widgets_stop_at_the_bounds_and_an_over_budget_start_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("PFML_MAX_RUN_DISK", "1M")  # 5 digits epochs write ~3 MiB
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="train_data").select("digits")
    at.selectbox(key="train_loss").select("pfml").run()
    assert at.number_input(key="train_p_pfml_proxies_per_class").max == 1000
    assert at.number_input(key="train_p_pfml_alpha").max == 16
    at.button(key="train_start").click().run()
    assert not at.exception and at.session_state["train_view"].job is None
    [err] = [e.value.replace("\\", "") for e in at.error]  # shown as text: Markdown escaped
    assert err == ("this run would write about 3 MiB to disk over 5 epochs, over the 1 MiB per "
                   "run (PFML_MAX_RUN_DISK); most of it for eval_subset=500: lower it or the "
                   "epochs")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no run folder was made


def test_a_past_run_over_the_memory_budget_is_not_opened(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    run = tmp_path / "big-run"
    (run / "embeddings").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(TrainConfig(data="digits").to_dict()))
    np.savez(run / "embeddings" / "static.npz", labels=np.zeros(4, np.int64))
    np.savez(run / "embeddings" / "epoch-0000.npz", emb=np.zeros((3 * 4096, 64), np.float32))
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "2M")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.button(key="train_open").click().run()
    assert not at.exception and at.session_state["train_view"].job is None
    assert [e.value.replace("\\", "") for e in at.error] == [
        "run big-run would take about 33 MiB to open (3 MiB of arrays), over the 2 MiB per "
        "run (PFML_MAX_RUN_MEMORY): it is not opened"]
