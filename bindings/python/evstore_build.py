"""The package's build backend (PEP 517, PEP 660), on the standard library
alone: pip installs the package offline, with no setuptools and no wheel.

The wheel holds the package ``evstore/`` and, when the source tree has been
built (``build/libevstore.so``) or ``EVSTORE_LIBRARY`` names a library, a
copy of that library inside the package, which ``evstore/_lib.py`` finds
there: the installed package then needs only the system libraries the
build used (libuv, json-c, xxHash; ``scripts/setup-deps`` installs them).
An editable install (``pip install -e``) instead puts this directory on the
path, and the package finds the tree's library as it does when run from
the tree.
"""
import base64
import hashlib
import os
import re
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "evstore"
TAG = "py3-none-any"


def _version():
    with open(os.path.join(HERE, NAME, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _metadata():
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Durable workflows and agents on the evstore C library\n"
            "License: MIT\nRequires-Python: >=3.9\n" % (NAME, _version()))


def _library():
    env = os.environ.get("EVSTORE_LIBRARY")
    if env and os.path.exists(env):
        return env
    tree = os.path.join(HERE, "..", "..", "build", "libevstore.so")
    return tree if os.path.exists(tree) else None


class _Wheel:
    def __init__(self, directory):
        self.distinfo = "%s-%s.dist-info" % (NAME, _version())
        self.name = "%s-%s-%s.whl" % (NAME, _version(), TAG)
        self.zf = zipfile.ZipFile(os.path.join(directory, self.name), "w",
                                  zipfile.ZIP_DEFLATED)
        self.record = []

    def add(self, arcname, data):
        self.zf.writestr(arcname, data)
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))

    def close(self):
        self.add(self.distinfo + "/METADATA", _metadata().encode())
        self.add(self.distinfo + "/WHEEL", (
            "Wheel-Version: 1.0\nGenerator: evstore_build\n"
            "Root-Is-Purelib: true\nTag: %s\n" % TAG).encode())
        record = self.distinfo + "/RECORD"
        self.zf.writestr(record, "\n".join(self.record + [record + ",,"]) +
                         "\n")
        self.zf.close()
        return self.name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    w = _Wheel(wheel_directory)
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py") or name == "py.typed":
            with open(os.path.join(pkg, name), "rb") as f:
                w.add("%s/%s" % (NAME, name), f.read())
    lib = _library()
    if lib:
        with open(os.path.realpath(lib), "rb") as f:
            w.add(NAME + "/libevstore.so", f.read())
    return w.close()


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    w = _Wheel(wheel_directory)
    w.add(NAME + ".pth", (HERE + "\n").encode())
    return w.close()
