# Turns configs/pyslowfast_defaults.yaml into a C++ source (a raw string literal), so the binary
# carries PySlowFast's defaults and needs no data files at run time.
file(READ ${IN} content)
file(WRITE ${OUT} "namespace vidfeat {\nextern const char* const kPySlowFastDefaultsYaml;\nconst char* const kPySlowFastDefaultsYaml = R\"vidfeat_yaml(${content})vidfeat_yaml\";\n}\n")
