"""Member networks: backbones, the Lightning module that trains them, and scikit-learn facades."""

from members.averaging import average_networks
from members.batch_ensemble import BatchEnsemble
from members.batched import BatchedMemberModule, StackedNetworks, fit_batched, replicate
from members.cnn1d import CNN1d
from members.cnn2d import CNN2d
from members.compress import compress, pickled_size
from members.distillation import DistillationModule
from members.export import to_onnx, to_torch
from members.mc_dropout import MCDropout
from members.mimo import MIMO
from members.mlp import MLP
from members.module import MemberModule
from members.neural import NeuralClassifier, NeuralRegressor
from members.packed import Packed
from members.permutation import (
    PermutationSpec,
    activation_matching,
    permutation_spec,
    permute,
    weight_matching,
)
from members.registry import BACKBONES, build_backbone, get_backbone, register_backbone
from members.resnet import ResNet
from members.schedules import CyclicCosineSchedule, cycle_ends
from members.snapshot import SnapshotCollector
from members.subnetworks import SubNetworkBackbone, SubNetworks

__all__ = [
    "BACKBONES",
    "BatchEnsemble",
    "BatchedMemberModule",
    "CNN1d",
    "CNN2d",
    "CyclicCosineSchedule",
    "DistillationModule",
    "MCDropout",
    "MIMO",
    "MLP",
    "MemberModule",
    "NeuralClassifier",
    "NeuralRegressor",
    "Packed",
    "PermutationSpec",
    "ResNet",
    "SnapshotCollector",
    "SubNetworkBackbone",
    "SubNetworks",
    "StackedNetworks",
    "activation_matching",
    "average_networks",
    "build_backbone",
    "compress",
    "cycle_ends",
    "fit_batched",
    "get_backbone",
    "permutation_spec",
    "permute",
    "pickled_size",
    "register_backbone",
    "replicate",
    "to_onnx",
    "to_torch",
    "weight_matching",
]
