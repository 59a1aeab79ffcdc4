"""Dataset tests never read or write the real cache folders (minidl's and Keras's); their own
helpers (``synthetic``) are imported as plain modules."""
import sys
from pathlib import Path

import pytest

from minidl.datasets import files

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def empty_minidl_home(monkeypatch, tmp_path):
    """Each test sees empty cache folders, never the user's ~/.minidl or ~/.keras."""
    home = tmp_path / 'minidl_home'
    monkeypatch.setenv('MINIDL_HOME', str(home))
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras_home'))
    monkeypatch.setattr(files, 'KERAS_FALLBACK', tmp_path / 'tmp_keras' / 'datasets')
    return home
