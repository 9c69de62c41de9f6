"""Datasets: the Dataset record, splits and label noise, the bundled sets, user files,
the CUB / Cars / SOP benchmark folders and their transforms."""
from pfml_core.data.dataset import (SPLITS, Dataset, flip_labels, split, split_class_names,
                                    with_noise)
from pfml_core.data.user_files import MAX_BYTES, features_dataset, store_upload
from pfml_core.data.bundled import BUNDLED, load_dataset
from pfml_core.data.benchmarks import BENCHMARKS, load_benchmark

__all__ = ["BENCHMARKS", "BUNDLED", "MAX_BYTES", "SPLITS", "Dataset", "features_dataset",
           "flip_labels", "load_benchmark", "load_dataset", "split", "split_class_names",
           "store_upload", "with_noise"]
