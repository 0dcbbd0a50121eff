"""Stand-in for PyAV: PySlowFast's dataset code imports it and sets its log level at import time;
model building never decodes video."""


class _Logging:
    ERROR = 0

    @staticmethod
    def set_level(_level):
        pass


logging = _Logging()


class _VideoFrame:
    pict_type = None


class _FrameModule:
    VideoFrame = _VideoFrame


class _VideoModule:
    frame = _FrameModule()


video = _VideoModule()
