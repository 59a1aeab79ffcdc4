"""The CUDA C sources of minidl's GPU kernels, one ``.cu`` file per kernel family.

They are not Python: ``minidl.backends.cuda`` reads them as text and compiles them at run time
with ``cupy.RawModule``. In a checkout they are read from this top-level directory; an
installed minidl ships them as package data of ``minidl.kernels``.
"""
