"""Training: one module per trained stage, the paper's data generator, perceptual calibration,
ensemble tuning, ``train all`` and the ablation. Commands: ``anomaly_seg train ...`` and
``anomaly_seg tune-ensemble``.
"""
from __future__ import annotations

from .ablation import ABLATION_ROWS, AblationResult, make_resynthesis_only_dir, run_ablation
from .all import AllResult, train_all
from .calibration import calibrate_perceptual, ensure_perceptual_network
from .common import Checkpoint, RunLogger, StageResult, rng_for, seed_everything, select_device
from .config import (
    ENSEMBLE_CRITERIA,
    PRESETS,
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_train_config,
    parse_overrides,
    save_config,
)
from .data_generator import SOURCES, class_swap_labels, generate_batch, swap_instances, void_anomaly_labels
from .dissimilarity import enet_class_weights, train_dissimilarity
from .ensemble import (
    EnsembleResult,
    GridScorer,
    VoidLabelledFrames,
    criterion_of,
    histogram_metrics,
    select_best,
    training_data_of,
    tune_ensemble,
    weight_grid,
)
from .generated_set import GeneratedSet, load_or_generate
from .manifest import write_manifest
from .segmentation import augment_segmentation, train_segmentation
from .synthesis import train_synthesis

__all__ = [
    'ABLATION_ROWS',
    'ENSEMBLE_CRITERIA',
    'PRESETS',
    'SOURCES',
    'AblationResult',
    'AllResult',
    'Checkpoint',
    'ConfigError',
    'EnsembleResult',
    'GeneratedSet',
    'GridScorer',
    'RunLogger',
    'StageResult',
    'TrainConfig',
    'augment_segmentation',
    'calibrate_perceptual',
    'class_swap_labels',
    'config_from_dict',
    'config_to_dict',
    'criterion_of',
    'enet_class_weights',
    'ensure_perceptual_network',
    'generate_batch',
    'histogram_metrics',
    'load_or_generate',
    'load_train_config',
    'make_resynthesis_only_dir',
    'parse_overrides',
    'rng_for',
    'run_ablation',
    'save_config',
    'seed_everything',
    'select_best',
    'select_device',
    'swap_instances',
    'train_all',
    'train_dissimilarity',
    'train_segmentation',
    'train_synthesis',
    'training_data_of',
    'tune_ensemble',
    'VoidLabelledFrames',
    'void_anomaly_labels',
    'weight_grid',
    'write_manifest',
]
