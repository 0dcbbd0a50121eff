"""pytorchvideo.layers.batch_norm: the synchronised BatchNorms (BN.NORM_TYPE sync_batchnorm, e.g.
PySlowFast's Charades and SSv2 configs; contrastive heads). They are torch.nn.BatchNorm*d
subclasses with the same parameters and buffers (so the same state-dict keys and the same
init_weights treatment); statistics are only synchronised across processes in training, so in
eval mode, or in one process, they are plain BatchNorm. Synchronised training is not provided.
"""
from torch import nn

from _absent import absent_function
from pytorchvideo.layers.distributed import get_world_size


def _sync_batchnorm(base):
    class NaiveSyncBatchNorm(base):
        def __init__(self, num_sync_devices=None, global_sync=True, **kwargs):
            self.num_sync_devices = num_sync_devices
            self.global_sync = global_sync
            super().__init__(**kwargs)

        def forward(self, input):
            if not self.training or get_world_size() == 1:
                return super().forward(input)
            return absent_function("synchronised BatchNorm training across processes")()

    NaiveSyncBatchNorm.__name__ = NaiveSyncBatchNorm.__qualname__ = "NaiveSyncBatchNorm" + base.__name__[-2:]
    return NaiveSyncBatchNorm


NaiveSyncBatchNorm1d = _sync_batchnorm(nn.BatchNorm1d)
NaiveSyncBatchNorm2d = _sync_batchnorm(nn.BatchNorm2d)
NaiveSyncBatchNorm3d = _sync_batchnorm(nn.BatchNorm3d)
