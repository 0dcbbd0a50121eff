"""pytorchvideo.layers.swish.Swish, which PySlowFast's X3D and squeeze-excitation blocks use in
their forward: x * sigmoid(x) (PyTorchVideo computes exactly this in its autograd function; the
module has no parameters, so nothing of it reaches a state dict)."""
import torch
from torch import nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)
