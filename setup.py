"""Install minidl: `pip install .` (add `[gpu]` for CuPy, `[test]` for the test suite, `[docs]`
for the docs site, `[distributed]` for training over MPI)."""
from setuptools import find_packages, setup

# The docs site (mkdocs build --strict): MkDocs, its theme, the API pages from docstrings, and
# markdown-exec, which runs the chapters' code blocks. Graphviz's `dot` program, for the model
# pictures, is not a Python package: the pages fall back to the DOT text without it.
DOCS = ['mkdocs==1.6.1', 'mkdocs-material==9.8.1', 'mkdocstrings==1.0.8',
        'mkdocstrings-python==2.0.11', 'markdown-exec[ansi]==1.12.6']

# Data-parallel training: mpi4py, the MPICH library as a wheel (no system MPI needed; it brings
# mpiexec), and threadpoolctl, with which each process keeps the BLAS to its share of the cores.
DISTRIBUTED = ['mpi4py>=4', 'mpich', 'threadpoolctl']

setup(
    name='minidl',
    version='0.1.0',
    description='A from-scratch deep-learning engine on NumPy and CuPy with a Keras-style API',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.11',
    packages=find_packages(include=['minidl', 'minidl.*']) + ['minidl.kernels'],
    package_dir={'minidl.kernels': 'kernels'},
    package_data={'minidl.kernels': ['*.cu', '*.cuh'],
                  'minidl.backends.cuda_simulator': ['*.h', '*.cpp'],
                  'minidl.datasets': ['data/mnist/*.gz']},
    install_requires=['numpy', 'numba', 'pillow', 'matplotlib', 'h5py', 'tqdm'],
    extras_require={
        'gpu': ['cupy-cuda12x'],
        'docs': DOCS,
        'distributed': DISTRIBUTED,
        'test': ['pytest', 'hypothesis', 'mnist1d'] + DOCS + DISTRIBUTED,  # the docs and MPI tests
    },
)
