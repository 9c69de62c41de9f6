"""The label-noise lab and sweeps: grids of training runs as Optuna studies, workers on this
server or any machine, per-run measurements (memorization curves, suspect labels), the
sweep's decision, the default regime and the paper's tables to compare against."""
from pfml_core.lab import best, check_labels, clean_export, cleaning, launch, migrate, suspects, worker
from pfml_core.lab.grid import (
                                MAX_RUNS,
                                NOISE_AXES,
                                REPORTED,
                                SWEEP_AXES,
                                aggregate,
                                check_data,
                                export_csv,
                                gain,
                                gain_text,
                                grid_frame,
                                loss_names,
                                noise_grid,
                                parse_list,
                                runs_frame,
                                size,
                                sweep_grid,
)
from pfml_core.lab.measure import (
                                CURVES,
                                DETECTION,
                                MEMORIZATION_NOTE,
                                curves_frame,
                                curves_summary,
                                detection_table,
                                export_curves,
)
from pfml_core.lab.paper import ABLATIONS, AXIS_LABELS, NOISE_TABLE, ablation, noise_gain, noise_table
from pfml_core.lab.regime import default_grid
from pfml_core.lab.runtime import dataset, eta, train_class_names
from pfml_core.lab.studies import STORAGE_ERRORS, Lab

__all__ = ["ABLATIONS", "AXIS_LABELS", "CURVES", "DETECTION", "MEMORIZATION_NOTE", "MAX_RUNS", "NOISE_AXES",
           "NOISE_TABLE",
           "REPORTED", "STORAGE_ERRORS", "SWEEP_AXES", "Lab", "ablation", "aggregate", "check_data",
           "curves_frame", "curves_summary", "dataset", "default_grid", "detection_table", "eta", "export_csv",
           "export_curves", "gain", "gain_text", "grid_frame", "loss_names", "noise_gain", "noise_grid",
           "noise_table", "parse_list", "runs_frame", "size", "suspects", "sweep_grid",
           "check_labels", "clean_export", "cleaning",
           "train_class_names", "best", "launch", "migrate", "worker"]
