"""Install minidl: `pip install .` (add `[gpu]` for CuPy, `[test]` for the test suite)."""
from setuptools import find_packages, setup

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
        'test': ['pytest', 'hypothesis', 'mnist1d'],
    },
)
