"""Run a script on several MPI processes, as ``mpiexec -n N python script.py`` would.

The tests write small scripts for the ranks to run, launch them with the mpiexec of the MPI
that mpi4py uses (the MPICH wheel's, beside this Python), and read what rank 0 wrote. They
are skipped where mpi4py or mpiexec is missing.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minidl.distributed import mpiexec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_ranks(tmp_path):
    """``run_ranks(*code, n=2, timeout=120, env=None, check=True)``: run the pieces of
    ``code``, each dedented, one after the other, on ``n`` processes in ``tmp_path``, and return
    the CompletedProcess, its output as text. ``check``: fail the test, showing the output,
    unless every rank exited with 0."""
    pytest.importorskip('mpi4py')
    launcher = mpiexec()
    if launcher is None:
        pytest.skip('no mpiexec (pip install minidl[distributed] brings MPICH\'s)')

    def run(*code, n=2, timeout=120, env=None, check=True):
        script = tmp_path / f'ranks_{len(list(tmp_path.glob("ranks_*.py")))}.py'
        script.write_text('\n'.join(textwrap.dedent(piece) for piece in code))
        environment = {**os.environ, 'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1',
                       'NUMBA_NUM_THREADS': '1', **(env or {})}
        result = subprocess.run([launcher, '-n', str(n), sys.executable, str(script)],
                                cwd=tmp_path, env=environment, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f'mpiexec -n {n} exited with {result.returncode}:\n{result.stdout}\n'
                        f'{result.stderr}')
        return result
    return run
