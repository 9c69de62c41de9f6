"""studio/train_session.py: one training job per session, at most PFML_MAX_TRAIN_JOBS across
the server (others are refused, not queued silently), and a finished job frees its place."""
import pytest

from studio import train_session
from studio.train_session import TrainView


class FakeJob:
    def __init__(self):
        self.running, self.closed = False, False

    def start(self):
        self.running = True
        return self

    def close(self):
        self.closed, self.running = True, False


@pytest.fixture(autouse=True)
def empty_server(monkeypatch, tmp_path):
    monkeypatch.setattr(train_session, "_LIVE", type(train_session._LIVE)())
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))  # its training slots live there


def test_one_job_per_session_the_previous_is_closed(monkeypatch):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", "1")
    view = TrainView()
    first = view.start(FakeJob)
    second = view.start(FakeJob)  # the same session may replace its own job
    assert first.closed and second.running and view.job is second


def test_server_cap_refuses_a_third_session_until_one_ends(monkeypatch):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", "2")
    a, b, c = TrainView(), TrainView(), TrainView()
    made = []
    make = lambda: made.append(FakeJob()) or made[-1]  # noqa: E731
    assert a.start(make) is not None and b.start(make) is not None
    assert c.start(make) is None and len(made) == 2  # refused before anything was made
    assert train_session.running_elsewhere(c.job) == 2
    a.job.running = False  # a finished
    assert c.start(make) is made[-1] and len(made) == 3


@pytest.mark.parametrize("bad", ["0", "-1", "two", ""])
def test_bad_operator_setting_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", bad)
    with pytest.raises(ValueError, match="PFML_MAX_TRAIN_JOBS must be a whole number"):
        train_session.max_jobs()
