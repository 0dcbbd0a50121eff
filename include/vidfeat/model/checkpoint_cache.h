#pragma once
// Moved to the model-zoo room: include vidfeat/zoo/checkpoint_cache.h (library vidfeat_zoo). This
// forwarding header goes once src/cli includes the new path.
#include "vidfeat/zoo/checkpoint_cache.h"
