// Precompiled header for the model code: torch/torch.h alone costs ~20 s per file.
#pragma once
#include <torch/torch.h>
