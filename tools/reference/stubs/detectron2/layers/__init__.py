"""detectron2.layers: PySlowFast's head_helper imports ROIAlign for the AVA detection head only."""
from _absent import absent_class

ROIAlign = absent_class("detectron2.layers.ROIAlign")
