"""Notebooks run top to bottom as Jupyter runs them (nbclient driving an ipykernel), and
their charts are rendered."""

import base64

import nbformat
from nbclient import NotebookClient

from .conftest import ROOT


def test_monitor_notebook_runs_top_to_bottom_and_draws_its_chart():
    nb = nbformat.read(ROOT / "notebooks" / "monitor.ipynb", as_version=4)
    # run from the notebooks folder, as `jupyter lab notebooks/monitor.ipynb` does; a cell
    # that raises fails the test with its traceback (CellExecutionError)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})  # fmt: skip
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "bid px" in text and "trades" in text, text
    assert "bot exit code 0 connector exit code 0" in text, text
    images = [
        o.data["image/png"]
        for o in outputs
        if o.output_type in ("display_data", "execute_result") and "image/png" in o.data
    ]
    assert len(images) == 1, [o.output_type for o in outputs]
    png = base64.b64decode(images[0])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000  # a drawn figure


def test_dashboard_notebook_runs_and_draws_its_panels():
    nb = nbformat.read(ROOT / "notebooks" / "dashboard.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})  # fmt: skip
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "connector dash" in text and "bot 4242" in text, text
    assert "bot exit code 0 connector exit code 0" in text, text
    images = [o.data["image/png"] for o in outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]  # fmt: skip
    # redrawn in place: the last drawing stays, one figure of six panels
    assert len(images) == 1, [o.output_type for o in outputs]
    png = base64.b64decode(images[0])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20000
