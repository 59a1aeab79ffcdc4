"""The scripts in examples/ and benchmarks/ explain themselves: ``--help`` gives every option
what it does and its default; a helper module (a name starting with ``_``) is not a script."""
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(path for folder in ('examples', 'benchmarks')
               for path in (ROOT / folder).glob('*.py'))
SCRIPTS = [path for path in FILES if not path.name.startswith('_')]
HELPERS = [path for path in FILES if path.name.startswith('_')]


def option_entries(help_text):
    """{'--flag': its help text} for every option of an argparse ``--help`` text."""
    entries = re.split(r'\n  (?=-)', '\n' + help_text.split('\noptions:\n', 1)[1])[1:]
    return {entry.split()[0].rstrip(','): ' '.join(entry.split()) for entry in entries}


@pytest.mark.parametrize('path', SCRIPTS, ids=lambda path: f'{path.parent.name}/{path.name}')
def test_every_option_says_what_it_does_and_its_default(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(path.stem).main(['--help'])
    assert exit_info.value.code == 0
    options = option_entries(capsys.readouterr().out)
    assert options and '-h' in options
    for flag, entry in options.items():
        if flag != '-h':
            assert '(default: ' in entry, f'{path.name} {flag}: {entry}'


def test_helper_modules_do_not_look_like_scripts():
    assert [path.name for path in HELPERS] == ['_peers.py', '_separate_process.py',
                                               '_step_anatomy.py']
    for path in HELPERS:
        source = path.read_text()
        assert '__main__' not in source and 'argparse' not in source
        assert 'not a script' in source.split('\n', 1)[0]
