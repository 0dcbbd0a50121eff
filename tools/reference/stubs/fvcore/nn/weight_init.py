"""fvcore.nn.weight_init: the two Caffe2-style fills PySlowFast's init_weights calls. These run
during model building and draw from torch's global generator, so they must be fvcore's exactly
(same torch.nn.init call, same arguments, same order): the seeded fixtures depend on it.

  c2_msra_fill:   weight ~ kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias = 0
  c2_xavier_fill: weight ~ kaiming_uniform_(a=1), bias = 0
"""
from torch import nn


def c2_msra_fill(module):
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module):
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
