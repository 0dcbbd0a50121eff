"""fvcore.nn.flop_count: imported by slowfast/utils/misc.py for its model statistics only."""
from _absent import absent_function

flop_count = absent_function("fvcore.nn.flop_count.flop_count")
