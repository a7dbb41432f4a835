"""Training: configuration, the fit/evaluate loop, checkpoints and metric logs."""

from .config import ConfigError, ExperimentConfig, load_config
from .loop import build_model, checkpoint_path, evaluate, fit, load_splits, load_task_info, load_trained, training_bytes

__all__ = ["ConfigError", "ExperimentConfig", "load_config", "fit", "evaluate", "build_model", "load_splits",
           "load_task_info", "load_trained", "checkpoint_path", "training_bytes"]
