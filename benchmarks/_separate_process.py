"""A helper of the benchmark scripts, not a script: runs their PyTorch half in a fresh process.

PyTorch and minidl's Numba kernels load the same OpenMP runtime (libgomp), which reads its
wait policy once, when the first of them loads it. minidl asks for passive waits, so that its
threads do not spin against OpenBLAS's; PyTorch is fastest with the default, spinning waits.
In one process, whichever library loads second runs under the other's policy (PyTorch then
ran 25% slower, minidl's kernels up to 5x slower), so each one is timed in its own process.
"""
import json
import subprocess
import sys


def run_json(script, *args, env=None):
    """Run ``python script *args`` (in environment ``env``, None: this one) and return the
    JSON object printed on its last line."""
    result = subprocess.run([sys.executable, str(script), *map(str, args)], check=True,
                            capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])
