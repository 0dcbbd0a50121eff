"""fvcore.nn.activation_count: imported by slowfast/utils/misc.py for its model statistics only."""
from _absent import absent_function

activation_count = absent_function("fvcore.nn.activation_count.activation_count")
