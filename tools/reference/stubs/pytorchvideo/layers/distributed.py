"""pytorchvideo.layers.distributed, as seen by one CPU process: slowfast/utils/distributed.py
re-exports these; model building only asks for sizes (contrastive models)."""
import torch.distributed as dist

from _absent import absent_function


def _initialized():
    return dist.is_available() and dist.is_initialized()


def get_world_size():
    return dist.get_world_size() if _initialized() else 1


def get_local_size():
    return 1


def get_local_rank():
    return 0


def get_local_process_group():
    return None


def cat_all_gather(tensors, local=False):
    if get_world_size() == 1:
        return tensors
    return absent_function("pytorchvideo.layers.distributed.cat_all_gather (multi-process)")()


init_distributed_training = absent_function("pytorchvideo.layers.distributed.init_distributed_training")
