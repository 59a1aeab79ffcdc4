"""Smoke runs of the benchmark scripts at tiny sizes: they run and report. Speed is measured by
running them, never asserted here."""
import importlib.util
import json
import os

import pytest

import conv_speed
import first_step
import h5_open
import mnist_epoch
import vgg_memory
from minidl.backends import kernels


@pytest.fixture
def without_torch(monkeypatch):
    """The scripts behave as on a machine without PyTorch (no peer process is started)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *args: None if name == 'torch' else find_spec(name, *args))


def test_conv_speed_times_each_kernel_set_and_the_gemm_floor(tmp_path, capsys, without_torch):
    conv_speed.main(['--quick', '--repeat', '1', '--json', str(tmp_path / 'conv.json')])
    rows = json.loads((tmp_path / 'conv.json').read_text())['rows']
    assert [row['layer'] for row in rows] == ['mnist conv1', 'mnist conv2', 'mnist conv3']
    for row in rows:
        assert set(row['ms']) == {'minidl reference', 'minidl numba', 'gemm floor'}
        assert min(row['ms'].values()) > 0
    assert 'torch not installed' in capsys.readouterr().out


def test_mnist_epoch_trains_and_reports_test_accuracy(tmp_path, without_torch):
    mnist_epoch.main(['--subset', '640', '--json', str(tmp_path / 'epoch.json')])
    result = json.loads((tmp_path / 'epoch.json').read_text())
    assert result['examples'] == 640 and result['minidl_s'] > 0
    assert 0.1 < result['minidl_test_accuracy'] <= 1


def test_vgg_memory_builds_columns_within_the_tiling(monkeypatch, capsys):
    monkeypatch.setattr(kernels, 'im2col', kernels.im2col)  # the script wraps it; undo that
    vgg_memory.main(['--batch-size', '1', '--size', '32'])
    out = capsys.readouterr().out
    assert 'peak of live arrays' in out and '(within the tiling' in out


def test_h5_open_times_the_heap_scan_against_plain_h5py(capsys):
    h5_open.main(['--megabytes', '1', '--repeat', '1'])
    out = capsys.readouterr().out
    assert '1 global heap(s)' in out
    assert all(step in out for step in ('h5py read', 'heap scan', 'minidl load_weights'))


def test_first_step_times_a_cold_and_a_warm_process(monkeypatch, capsys):
    monkeypatch.setenv(kernels.ENV_VAR, 'reference')  # the smoke run compiles nothing
    environment = dict(os.environ)
    results = first_step.main(['--batch-size', '8'])
    assert dict(os.environ) == environment  # the temporary cache was the children's alone
    assert list(results) == ['cold', 'warm']
    for result in results.values():
        assert 0 < result['first_s'] < result['process_s'] and result['second_s'] > 0
        assert (result['compiled'], result['loaded']) == (0, 0)
    assert '0 compiled, 0 loaded from the cache' in capsys.readouterr().out
