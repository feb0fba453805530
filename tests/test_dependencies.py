"""Dependencies point one way (ARCHITECTURE.md): checked in a fresh interpreter per package."""

import subprocess
import sys

import pytest

FORBIDDEN = {
    "combiners": ["members", "ensembles", "experiments", "lightning", "torch"],
    "members": ["combiners", "ensembles", "experiments"],
    "ensembles": ["experiments"],
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_what_it_must_not(package):
    code = (
        f"import sys, {package}\n"
        f"bad = [m for m in {FORBIDDEN[package]!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{package} imports {result.stdout.strip()}"
