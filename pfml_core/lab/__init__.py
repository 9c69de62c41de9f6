"""The label-noise lab and sweeps: grids of training runs, a SQLite store, background
workers, per-run measurements and the paper's tables to compare against."""
from pfml_core.lab.grid import (MAX_RUNS, NOISE_AXES, REPORTED, SWEEP_AXES, aggregate,
                                check_data, export_csv, gain, grid_frame, loss_names,
                                noise_grid, parse_list, runs_frame, sweep_grid)
from pfml_core.lab.paper import ABLATIONS, AXIS_LABELS, NOISE_TABLE, ablation, noise_gain, noise_table
from pfml_core.lab.store import Store
from pfml_core.lab import worker

__all__ = ["ABLATIONS", "AXIS_LABELS", "MAX_RUNS", "NOISE_AXES", "NOISE_TABLE", "REPORTED",
           "SWEEP_AXES", "Store", "ablation", "aggregate", "check_data", "export_csv", "gain",
           "grid_frame", "loss_names", "noise_gain", "noise_grid", "noise_table", "parse_list", "runs_frame",
           "sweep_grid", "worker"]
