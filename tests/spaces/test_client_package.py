"""The client SDK (``salon_client``) is a package of its own that needs no Django, so bots,
load tests and ``space_client`` run it anywhere."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_client_sdk_imports_no_django():
    code = (
        "import sys, salon_client.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'channels', 'rest_framework', 'allauth', 'daphne'}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
