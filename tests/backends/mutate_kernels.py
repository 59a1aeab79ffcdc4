"""Mutation check of the CUDA parity tests: does a deliberately broken kernel make them fail?

    python tests/backends/mutate_kernels.py [--only SUBSTRING]

For each mutation below (an off-by-one index, a wrong warp offset, a forgotten write, ...) the
script copies ``kernels/`` to a temporary directory, breaks one line, and runs
``tests/backends/test_cuda.py`` against the copy (on the CUDA simulator where there is no GPU),
stopping at the first failure. It prints a Markdown table: each mutation, caught or not, and
the first test that caught it. Run by hand, not by CI (a few minutes).

The same file is the pytest plugin (``-p mutate_kernels``) that points
:func:`minidl.backends.cuda.kernel_dir` at the mutated copy.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = 'MINIDL_MUTANT_KERNELS'

# (file, what the mutation does, text in the file, its replacement); every occurrence changes.
MUTATIONS = [
    ('common.cuh', 'grid_start off by one (thread i does element i + 1)',
     'static_cast<I>(threadIdx.x);', 'static_cast<I>(threadIdx.x) + 1;'),
    ('common.cuh', 'window_at accepts i == out_size (one window past the end)',
     'return i < out_size ? i : -1;', 'return i <= out_size ? i : -1;'),
    ('im2col.cu', 'im2col reads one row past the input (h <= H)',
     '0 <= h && h < H', '0 <= h && h <= H'),
    ('im2col.cu', 'im2col leaves the padding entries unwritten',
     'cols[index] = inside ? x[((n * H + h) * W + w) * C + c] : T(0);',
     'if (inside) cols[index] = x[((n * H + h) * W + w) * C + c];'),
    ('im2col.cu', 'col2im skips the last window column',
     'for (I q = 0; q < kw; ++q) {\n                const I j = window_at(w + left, q * dw',
     'for (I q = 0; q < kw - 1; ++q) {\n                const I j = window_at(w + left, q * dw'),
    ('pooling.cu', 'pooling windows one position too long',
     'min(start + k, size)', 'min(start + k + 1, size)'),
    ('pooling.cu', 'global max-pool reads one step past L',
     'for (I l = 1; l < L; ++l)', 'for (I l = 1; l <= L; ++l)'),
    ('pooling.cu', 'avgpool backward counts the padding in the mean',
     'const T count = T((rows.end - rows.begin) * (cols.end - cols.begin));',
     'const T count = T(kh * kw);'),
    ('elementwise.cu', 'relu slope 1 at y == 0',
     'case RELU:    return T(y > T(0));', 'case RELU:    return T(y >= T(0));'),
    ('elementwise.cu', 'bias read one channel off',
     'b[index % C]', 'b[(index + 1) % C]'),
    ('random.cu', 'dropout key constant off by one',
     'step + 0x9E3779B9u', 'step + 0x9E3779B8u'),
    ('random.cu', 'dropout keeps bits == threshold (> for >=)',
     'bits >= threshold', 'bits > threshold'),
    ('loss.cu', 'warp max starts at offset 8 instead of 16 (wrong warp offset)',
     'for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2) {\n        value = fmax(',
     'for (int offset = WARP_SIZE / 4; offset > 0; offset /= 2) {\n        value = fmax('),
    ('loss.cu', 'warp sum skips its last butterfly step (offset 1)',
     'offset > 0; offset /= 2) {\n        value +=', 'offset > 1; offset /= 2) {\n        value +='),
    ('loss.cu', 'shuffle mask names half the warp',
     'FULL_WARP = 0xFFFFFFFFu', 'FULL_WARP = 0x0000FFFFu'),
    ('optimizers.cu', "Adam's second moment uses g instead of g^2",
     'T v_new = beta2 * v[index] + one_minus_beta2 * g * g;',
     'T v_new = beta2 * v[index] + one_minus_beta2 * g;'),
    ('optimizers.cu', 'Nesterov look-ahead with the wrong sign',
     'momentum * v - step : v', 'momentum * v + step : v'),
    ('embedding.cu', 'each run of equal ids ends one row early',
     'const I end = starts[run + 1];', 'const I end = starts[run + 1] - 1;'),
]


def pytest_configure(config):
    """As a pytest plugin: compile the kernels from the mutated copy."""
    from minidl.backends import cuda
    mutant = Path(os.environ[ENV_VAR])
    cuda.kernel_dir = lambda: mutant


def run_mutant(name, old, new, cache):
    """(caught, the first failing test or '') for one mutation."""
    with tempfile.TemporaryDirectory() as directory:
        kernels = Path(directory) / 'kernels'
        shutil.copytree(ROOT / 'kernels', kernels)
        path = kernels / name
        text = path.read_text()
        if old not in text:
            raise SystemExit(f'{name}: the text to mutate is gone: {old!r}')
        path.write_text(text.replace(old, new))
        env = dict(os.environ, **{ENV_VAR: str(kernels), 'MINIDL_CACHE': cache,
                                  'PYTHONPATH': os.pathsep.join(
                                      [str(ROOT), str(Path(__file__).parent),
                                       os.environ.get('PYTHONPATH', '')])})
        result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'mutate_kernels',
                                 '-p', 'no:cacheprovider', 'tests/backends/test_cuda.py'],
                                cwd=ROOT, env=env, capture_output=True, text=True)
    failed = re.search(r'^FAILED (\S+)', result.stdout, re.MULTILINE)
    return result.returncode != 0, failed[1].split('::')[-1] if failed else ''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--only', default='', help='run the mutations whose text contains this')
    args = parser.parse_args()
    print('| file | mutation | caught | first failing test |')
    print('|---|---|---|---|')
    with tempfile.TemporaryDirectory() as cache:
        for name, what, old, new in MUTATIONS:
            if args.only not in f'{name} {what}':
                continue
            caught, test = run_mutant(name, old, new, cache)
            print(f'| {name} | {what} | {"yes" if caught else "**no**"} | {test} |', flush=True)


if __name__ == '__main__':
    main()
