"""The README's install command works offline: a virtual environment,
then `pip install --no-index bindings/python` (the package's build
backend is the standard library's alone), and the installed package runs
a workflow from outside the tree, with the library it bundled."""
import os
import subprocess
import sys

from conftest import PKG

APP = """
import evstore, sys
store = evstore.Store(sys.argv[1])

@store.workflow("hello")
def hello(ctx, name):
    return ctx.step("greet", lambda n: "hello " + n, name)

print(evstore.__file__)
print(store.run("hello", id="h", name="venv"))
"""


def test_pip_installs_the_package_offline_into_a_venv(tmp_path):
    venv = str(tmp_path / "v")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PIP_FIND_LINKS", "PIP_INDEX_URL")}
    p = subprocess.run([os.path.join(venv, "bin", "pip"), "install",
                        "--no-index", "--disable-pip-version-check", PKG],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    env.pop("EVSTORE_LIBRARY", None)  # the bundled copy is the one
    p = subprocess.run([os.path.join(venv, "bin", "python"), "-c", APP,
                        str(tmp_path / "store")], cwd=str(tmp_path),
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    where, out = p.stdout.split("\n")[:2]
    assert where.startswith(venv), where
    assert out == "hello venv"
