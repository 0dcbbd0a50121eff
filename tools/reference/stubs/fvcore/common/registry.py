"""fvcore.common.registry.Registry: name -> class, filled by the @REGISTRY.register() decorator;
PySlowFast's build_model looks MODEL.MODEL_NAME up in it."""


class Registry:
    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj):
        if name in self._obj_map:
            raise KeyError("An object named '%s' was already registered in '%s' registry!" % (name, self._name))
        self._obj_map[name] = obj

    def register(self, obj=None):
        if obj is None:
            def deco(func_or_class):
                self._do_register(func_or_class.__name__, func_or_class)
                return func_or_class
            return deco
        self._do_register(obj.__name__, obj)
        return obj

    def get(self, name):
        if name not in self._obj_map:
            raise KeyError("No object named '%s' found in '%s' registry! (registered: %s)"
                           % (name, self._name, ", ".join(sorted(self._obj_map))))
        return self._obj_map[name]

    def __contains__(self, name):
        return name in self._obj_map

    def __iter__(self):
        return iter(self._obj_map.items())
