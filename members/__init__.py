"""Member networks: backbones, the Lightning module that trains them, and scikit-learn facades."""

from members.batched import BatchedMemberModule, StackedNetworks, fit_batched, replicate
from members.cnn1d import CNN1d
from members.cnn2d import CNN2d
from members.compress import compress, pickled_size
from members.distillation import DistillationModule
from members.export import to_onnx, to_torch
from members.mlp import MLP
from members.module import MemberModule
from members.neural import NeuralClassifier, NeuralRegressor
from members.registry import BACKBONES, build_backbone, get_backbone, register_backbone
from members.resnet import ResNet
from members.schedules import CyclicCosineSchedule, cycle_ends
from members.snapshot import SnapshotCollector

__all__ = [
    "BACKBONES",
    "BatchedMemberModule",
    "CNN1d",
    "CNN2d",
    "CyclicCosineSchedule",
    "DistillationModule",
    "MLP",
    "MemberModule",
    "NeuralClassifier",
    "NeuralRegressor",
    "ResNet",
    "SnapshotCollector",
    "StackedNetworks",
    "build_backbone",
    "compress",
    "cycle_ends",
    "fit_batched",
    "get_backbone",
    "pickled_size",
    "register_backbone",
    "replicate",
    "to_onnx",
    "to_torch",
]
