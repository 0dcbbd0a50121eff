"""iopath.common.file_io: PySlowFast keeps one PathManager (slowfast/utils/env.py) for its file
access; here every path is a local one."""
import os
import shutil


class PathManager:
    def open(self, path, mode="r", buffering=-1, **kwargs):
        return open(path, mode, buffering, **kwargs)

    def exists(self, path, **kwargs):
        return os.path.exists(path)

    def isfile(self, path, **kwargs):
        return os.path.isfile(path)

    def isdir(self, path, **kwargs):
        return os.path.isdir(path)

    def ls(self, path, **kwargs):
        return os.listdir(path)

    def mkdirs(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)

    def rm(self, path, **kwargs):
        os.remove(path)

    def copy(self, src, dst, overwrite=False, **kwargs):
        if os.path.exists(dst) and not overwrite:
            return False
        shutil.copyfile(src, dst)
        return True

    def get_local_path(self, path, **kwargs):
        return path


class PathManagerFactory:
    _managers = {}

    @staticmethod
    def get(key="__global_path_manager"):
        return PathManagerFactory._managers.setdefault(key, PathManager())


g_pathmgr = PathManagerFactory.get()
