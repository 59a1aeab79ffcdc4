"""The applications' weight files are looked up where Keras caches them."""
import pytest


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty ``$KERAS_HOME/models`` (and an empty ``$MINIDL_HOME``), returned."""
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras'))
    monkeypatch.setenv('MINIDL_HOME', str(tmp_path / 'minidl'))
    (tmp_path / 'keras' / 'models').mkdir(parents=True)
    return tmp_path / 'keras' / 'models'
