"""Every module of `mets` imports on its own and in any order: no import inside a function holds a
circle together (a circle fails here as a partially initialised module). Real processes: one
forked child per module, each importing that module first, then a few shuffled orders."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The libraries are imported once in the parent, so each forked child pays only for METS's own modules.
SCRIPT = r"""
import importlib, os, pkgutil, random, sys
import flask, flask_limiter, flask_login, flask_mail, flask_migrate, flask_sqlalchemy, flask_wtf, nh3, rq, sqlalchemy
import mets

names = sorted(m.name for m in pkgutil.walk_packages(mets.__path__, "mets."))
del sys.modules["mets"]
orders = [[name] for name in names] + [random.Random(seed).sample(names, len(names)) for seed in range(3)]


def run(order):
    for name in order:
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"{order[0]} first, then {name}: {type(exc).__name__}: {exc}", flush=True)
            os._exit(1)
    os._exit(0)


failed = 0
running = []
for order in orders:
    pid = os.fork()
    if pid == 0:
        run(order)
    running.append(pid)
    if len(running) >= 2:  # the machine's two cores
        failed += os.waitstatus_to_exitcode(os.waitpid(running.pop(0), 0)[1]) != 0
for pid in running:
    failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
print(f"{len(names)} modules, {len(orders)} orders, {failed} failed", flush=True)
"""


def test_every_module_imports_first_and_in_any_order():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *failures, summary = done.stdout.strip().split("\n")
    count = int(summary.split()[0])
    assert count > 60  # walk_packages found the whole tree, not just the top package
    assert failures == [] and summary.endswith(" 0 failed"), done.stdout


def test_importing_a_model_does_not_build_the_web_layer():
    code = "import sys, mets.models; print(any(n.startswith('mets.blueprints') for n in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
