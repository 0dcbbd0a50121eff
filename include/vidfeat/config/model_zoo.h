#pragma once
// Moved to the model-zoo room: include vidfeat/zoo/model_zoo.h (library vidfeat_zoo). This
// forwarding header goes once src/cli includes the new path.
#include "vidfeat/zoo/model_zoo.h"
