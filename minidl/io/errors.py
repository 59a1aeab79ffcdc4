"""The one exception type every weight and model file reader raises.

A file from a stranger can be damaged, truncated, crafted or simply of another kind. Whatever is
wrong, the reader that finds it raises :class:`WeightFileError` naming the file and what is wrong
with it; no zipfile, pickle, h5py or NumPy exception escapes a public reader. It subclasses
ValueError, so ``except ValueError`` keeps working.
"""


class WeightFileError(ValueError):
    """A weight or model file that cannot be read: the message names the file and the fault."""

    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f'{path}: {problem}')
