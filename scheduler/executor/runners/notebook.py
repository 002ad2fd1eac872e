"""The notebook step's process: execute a notebook headless with nbclient.

- Parameters go into a new code cell (tagged ``injected-parameters``) right after the cell
  tagged ``parameters``, or at the top when there is none: papermill's convention, so
  notebooks written for papermill work unchanged.
- The kernel is ipykernel on the step's interpreter (pipesched's own unless
  ``environment.python`` names another, which then needs ipykernel), whatever kernel the
  notebook's metadata names and whatever kernelspecs the user has installed: a scheduled run
  must not change with someone's ``~/.local/share/jupyter``. It talks to us over unix sockets
  in a private temporary folder (no TCP port, no runtime files under $HOME), and IPython's
  profile folder is a fresh one unless IPYTHONDIR is set, so a headless HOME works.
- jupyter_client starts the kernel in a session of its own, outside the step's process group:
  on SIGTERM/SIGINT (timeout, cancel) this process kills the kernel's session itself, keeps the
  notebook so far and exits; after a SIGKILL, ipykernel exits within a second on its own (it
  polls its parent).
- The executed notebook, with every output so far, is written to ``output`` whether the run
  succeeded or not. A failing cell is shown in the log: its number, its source and the
  error's name, value and traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import keyword
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.executor.runners import StepFailed, run_main, say

if TYPE_CHECKING:  # the notebook extra: imported where a notebook runs, if it is installed
    from nbclient import NotebookClient
    from nbformat import NotebookNode

INJECTED_TAG = "injected-parameters"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def inject_parameters(nb: NotebookNode, parameters: dict[str, Any]) -> int | None:
    """Insert the parameters cell; return its index, or None when there are no parameters."""
    import nbformat

    if not parameters:
        return None
    for name in parameters:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise StepFailed(f"notebook parameter {name!r} is not a Python variable name")
    source = "\n".join(
        ["# Parameters (injected by pipesched)"]
        + [f"{name} = {value!r}" for name, value in parameters.items()]
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INJECTED_TAG]
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        cell.pop("id", None)  # cell ids exist from format 4.5 on
    index = next(
        (i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])),
        0,
    )
    nb.cells.insert(index, cell)
    return index


def run_notebook(spec: dict[str, Any]) -> None:
    try:
        import ipykernel  # noqa: F401  (the kernel we start)
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, DeadKernelError
    except ImportError as exc:
        raise StepFailed(
            f"the notebook step needs nbclient, nbformat and ipykernel ({exc.name} is missing): "
            "pip install 'pipesched[notebook]'"
        ) from None

    source, output = Path(spec["notebook"]), Path(spec["output"])
    nb = nbformat.read(source, as_version=4)
    injected = inject_parameters(nb, spec.get("parameters") or {})
    errors: list[int] = []
    with _private_jupyter_dirs() as runtime:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            kernel_manager_class=_kernel_manager_class(spec["kernel_python"], runtime),
            resources={"metadata": {"path": os.getcwd()}},  # the kernel's working directory
            timeout=None,  # the step's own timeout bounds the whole run
            on_cell_executed=_echo_streams,
            on_cell_error=lambda cell, cell_index, execute_reply: errors.append(cell_index),
        )
        client.on_notebook_start = lambda **_: _stop_on_signals(client, nb, output, runtime)
        code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
        say(f"executing {source.name}: {code_cells} code cells" + _where(injected))
        try:
            client.execute()
        except CellExecutionError:
            index = errors[-1] if errors else _last_error_cell(nb)
            _report_cell_error(nb, index, injected, output)
            raise StepFailed(
                f"cell {_shown(index, injected)} failed: {_error_line(nb, index)}"
            ) from None
        except DeadKernelError as exc:
            raise StepFailed(f"the kernel died: {exc}") from None
        except RuntimeError as exc:  # nbclient's words for a kernel that never answered
            raise StepFailed(
                f"the kernel ({spec['kernel_python']} -m ipykernel_launcher) did not start: {exc}"
            ) from None
        finally:
            # nbclient's exit hook would try to stop a kernel that is already gone, noisily.
            atexit.unregister(client._cleanup_kernel)
            output.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, output)
    say(f"executed notebook written to {output}")


def _stop_on_signals(client: NotebookClient, nb: NotebookNode, output: Path, runtime: str) -> None:
    """Replace nbclient's SIGTERM/SIGINT handlers (which shut the kernel down gracefully while
    the process lingers until SIGKILL) with a quick stop: kill the kernel's session (it is
    outside our process group, and so are its children), keep the notebook so far, clean up."""
    import asyncio
    import signal

    import nbformat

    def stop(sig: signal.Signals) -> None:
        pgid = getattr(getattr(client.km, "provisioner", None), "pgid", None)
        if pgid:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            output.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, output)
        say(f"stopped by {sig.name}; the notebook so far: {output}")
        shutil.rmtree(runtime, ignore_errors=True)
        os._exit(128 + sig)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)


def _where(injected: int | None) -> str:
    if injected is None:
        return ""
    return f"; parameters injected as cell {injected + 1}"


def _kernel_manager_class(python: str, runtime: str) -> type:
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class StepKernelManager(AsyncKernelManager):
        """ipykernel on ``python`` over unix sockets in ``runtime``, never a kernelspec lookup."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(runtime, "kernel")

        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                spec = get_kernel_dict()
                spec["argv"] = [python, *spec["argv"][1:]]
                self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **spec)
            return self._kernel_spec

    return StepKernelManager


@contextlib.contextmanager
def _private_jupyter_dirs() -> Iterator[str]:
    """A 0700 folder for the connection file and sockets; IPython's profile in it too unless
    IPYTHONDIR is set. Removed afterwards."""
    runtime = tempfile.mkdtemp(prefix="pipesched-nb-")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime
    os.environ.setdefault("IPYTHONDIR", os.path.join(runtime, "ipython"))
    try:
        yield runtime
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(runtime, ignore_errors=True)


def _echo_streams(cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
    """What a cell printed goes to the step's log as it finishes, so `pipesched logs -f` shows
    progress."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(out.get("text", ""))
            stream.flush()


def _last_error_cell(nb: NotebookNode) -> int:
    for index in range(len(nb.cells) - 1, -1, -1):
        if any(o.get("output_type") == "error" for o in nb.cells[index].get("outputs", [])):
            return index
    return -1


def _shown(index: int, injected: int | None) -> str:
    """The failing cell as its author counts it: 1-based, in the notebook they wrote."""
    if injected is not None and index == injected:
        return "(the injected parameters cell)"
    original = index - 1 if injected is not None and index > injected else index
    return f"{original + 1} (index {original})"


def _error_output(nb: NotebookNode, index: int) -> dict[str, Any]:
    if 0 <= index < len(nb.cells):
        for out in nb.cells[index].get("outputs", []):
            if out.get("output_type") == "error":
                return dict(out)
    return {}


def _error_line(nb: NotebookNode, index: int) -> str:
    error = _error_output(nb, index)
    return f"{error.get('ename', 'error')}: {error.get('evalue', '')}".rstrip(": ")


def _report_cell_error(nb: NotebookNode, index: int, injected: int | None, output: Path) -> None:
    say(f"cell {_shown(index, injected)} failed:")
    if 0 <= index < len(nb.cells):
        for line in nb.cells[index].source.splitlines():
            say(f"    {line}")
    error = _error_output(nb, index)
    say(_error_line(nb, index))
    for block in error.get("traceback", []):
        say(_ANSI.sub("", block))
    say(f"the executed notebook, with the outputs so far: {output}")


def main() -> None:
    run_main(run_notebook)


if __name__ == "__main__":
    main()
