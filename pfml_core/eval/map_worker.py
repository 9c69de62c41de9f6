"""The map worker process (started by MapService as `python -m pfml_core.eval.map_worker FD`):
warm UMAP up once, then answer ("map", key, points, previous, seed) requests in order with
("ok", key, layout) or ("err", key, message). It ends when the channel closes."""
from __future__ import annotations

from pfml_core.eval import child_process, projection


def _warm_up() -> tuple:
    try:
        import torch  # imported with pfml_core anyway: keep it to one thread too

        torch.set_num_threads(1)
        return "warm", None, projection.warm_up()
    except Exception as e:  # noqa: BLE001 - reported to the page, which keeps PCA
        return "err", None, f"UMAP warm-up failed: {type(e).__name__}: {e}"


def _map(key, points, previous, seed) -> tuple:
    try:
        return "ok", key, projection.project(points, "umap", previous, seed)
    except Exception as e:  # noqa: BLE001 - one bad map must not end the worker
        return "err", key, f"{type(e).__name__}: {e}"


def main() -> None:
    conn = child_process.connect()
    try:
        conn.send(_warm_up())
        while True:
            _, key, points, previous, seed = conn.recv()
            conn.send(_map(key, points, previous, seed))
    except (EOFError, OSError):
        return  # the server (or MapService.close) closed the channel


if __name__ == "__main__":
    main()
