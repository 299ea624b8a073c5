"""The embedded run's generated secret key, as another process (the worker, the next start) reads it."""
import os
import subprocess
import sys
from pathlib import Path

from tests.web.test_security_headers import embedded_app


def test_a_worker_process_starting_from_the_environment_uses_the_same_key(tmp_path):
    instance = tmp_path / "instance"
    app = embedded_app(f"sqlite:///{tmp_path / 'mets.db'}", instance)
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    env.update(METS_INSTANCE_DIR=str(instance), DATABASE_URL=f"sqlite:///{tmp_path / 'mets.db'}")
    out = subprocess.run([sys.executable, "-c", "from mets import create_app; print(create_app().secret_key)"],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == app.secret_key
