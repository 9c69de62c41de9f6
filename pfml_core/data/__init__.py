"""Datasets: the Dataset record, splits and label noise, the bundled sets, user files,
the CUB / Cars / SOP benchmark folders and their transforms, the size limits on user files
and what the app may open (bundled sets, its uploads, the operator's data root)."""
from pfml_core.data import faults
from pfml_core.data.access import UPLOADS, data_root, expire_uploads, resolve_dataset_ref, store_upload
from pfml_core.data.benchmarks import BENCHMARKS, load_benchmark
from pfml_core.data.bundled import BUNDLED, load_dataset
from pfml_core.data.dataset import SPLITS, Dataset, flip_labels, split, split_class_names, with_noise
from pfml_core.data.transforms import eval_transform, train_transform
from pfml_core.data.user_files import MAX_BYTES, features_dataset

__all__ = ["BENCHMARKS", "BUNDLED", "MAX_BYTES", "SPLITS", "UPLOADS", "Dataset", "data_root",
           "eval_transform", "expire_uploads", "faults", "features_dataset", "flip_labels",
           "load_benchmark", "load_dataset", "resolve_dataset_ref", "split",
           "split_class_names", "store_upload", "train_transform", "with_noise"]
