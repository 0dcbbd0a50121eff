"""pytorchvideo.losses.soft_target_cross_entropy: imported by slowfast/models/losses.py (training only)."""
from _absent import absent_class

SoftTargetCrossEntropyLoss = absent_class("pytorchvideo.losses.soft_target_cross_entropy.SoftTargetCrossEntropyLoss")
