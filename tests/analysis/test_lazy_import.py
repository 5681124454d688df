"""What importing the package pulls in, seen from a fresh interpreter (a subprocess: integration)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_schema_and_package_import_without_pandas():
    code = "import sys, analysis, analysis.schema; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
