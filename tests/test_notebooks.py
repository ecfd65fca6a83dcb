"""Notebooks run top to bottom (their code cells, in order, in one fresh interpreter)."""

import json
import subprocess
import sys

from .conftest import ROOT


def test_monitor_notebook_runs_top_to_bottom(tmp_path):
    nb = json.loads((ROOT / "notebooks" / "monitor.ipynb").read_text())
    code = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    script = tmp_path / "monitor.py"
    script.write_text(code + "\nassert bot.returncode == 0 and conn.returncode == 0\n")
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "bid px" in r.stdout and "trades" in r.stdout
