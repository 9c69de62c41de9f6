"""An Optuna artifact store kept in the study storage's own database (one table beside
Optuna's), so a worker on another machine, with no folder shared with the app, leaves its
per-run tables (ranked suspect labels) where the app reads its trials."""
from __future__ import annotations

import io
import json
import os
import tempfile

import sqlalchemy as sa
from optuna.artifacts import get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

SUSPECTS = "suspects.json"
_TABLE = sa.Table("pfml_artifacts", sa.MetaData(), sa.Column("id", sa.String(64), primary_key=True),
                  sa.Column("body", sa.LargeBinary, nullable=False))
_MADE: set = set()


class DatabaseArtifactStore:
    """Optuna's ArtifactStore protocol (open_reader, write, remove) over an RDBStorage's engine."""

    def __init__(self, storage):
        self.engine = storage.engine
        if self.engine not in _MADE:  # once per process and database
            _TABLE.create(self.engine, checkfirst=True)
            _MADE.add(self.engine)

    def open_reader(self, artifact_id: str) -> io.BytesIO:
        with self.engine.connect() as c:
            row = c.execute(sa.select(_TABLE.c.body).where(_TABLE.c.id == artifact_id)).first()
        if row is None:
            raise ArtifactNotFound(f"no artifact {artifact_id!r}")
        return io.BytesIO(row[0])

    def write(self, artifact_id: str, content_body) -> None:
        with self.engine.begin() as c:
            c.execute(_TABLE.delete().where(_TABLE.c.id == artifact_id))
            c.execute(_TABLE.insert().values(id=artifact_id, body=content_body.read()))

    def remove(self, artifact_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(_TABLE.delete().where(_TABLE.c.id == artifact_id))


def write_table(store: DatabaseArtifactStore, trial, table: dict, storage=None) -> str:
    """Upload a per-sample table ({column: list}) as the trial's suspects artifact (storage:
    needed with a FrozenTrial)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, SUSPECTS)
        with open(path, "w") as f:
            json.dump(table, f)
        return upload_artifact(artifact_store=store, file_path=path, study_or_trial=trial, storage=storage)


def read_table(store: DatabaseArtifactStore, storage, trial_id: int) -> dict | None:
    """The trial's suspects table, or None when it kept none."""
    trial = storage.get_trial(int(trial_id))
    metas = [m for m in get_all_artifact_meta(trial, storage=storage) if m.filename == SUSPECTS]
    if not metas:
        return None
    return json.loads(store.open_reader(metas[-1].artifact_id).read())
