"""Make ``interop.celery_env`` and ``tests.*`` importable however pytest is invoked."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
