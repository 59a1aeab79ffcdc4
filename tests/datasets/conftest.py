"""Dataset tests never read or write the real cache folder."""
import pytest


@pytest.fixture(autouse=True)
def empty_minidl_home(monkeypatch, tmp_path):
    """Each test sees an empty cache folder, never the user's ~/.minidl."""
    home = tmp_path / 'minidl_home'
    monkeypatch.setenv('MINIDL_HOME', str(home))
    return home
