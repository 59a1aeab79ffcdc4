"""The docs site builds with ``mkdocs build --strict``: every code block of every chapter runs
(markdown-exec turns a failing block into a warning, and strict mode into an error), every
link and API reference resolves. Skipped where the docs extra is not installed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_with_every_example_run(tmp_path):
    for plugin in ('mkdocs', 'material', 'mkdocstrings_handlers.python', 'markdown_exec'):
        pytest.importorskip(plugin, reason="needs the docs extra: pip install -e '.[docs]'")
    path = [str(ROOT)] + ([os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else [])
    env = dict(os.environ, NO_MKDOCS_2_WARNING='1', PYTHONPATH=os.pathsep.join(path))
    done = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
                           str(tmp_path / 'site')], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
    chapters = sorted((tmp_path / 'site' / 'chapters').glob('*/index.html'))
    assert len(chapters) == 9
    pages = {page.parent.name: page.read_text() for page in chapters}
    assert 'Traceback' not in ''.join(pages.values())
    assert pages['convolution'].count('data:image/png;base64') == 2
    assert 'Total params: 93,322' in pages['summary']
    assert 'maxpool2d_forward_kernel' in pages['kernels']
