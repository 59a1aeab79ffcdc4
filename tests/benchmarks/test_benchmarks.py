"""Smoke runs of the benchmark scripts at tiny sizes: they run and report. Speed is measured by
running them, never asserted here."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

import cats_steps
import conv_speed
import device_checks
import distributed_scaling
import first_step
import h5_open
import kernels_roofline
import minidl
import mnist_epoch
import vgg_memory
from _step_anatomy import StepAnatomy, gemm_flops
from minidl import distributed
from minidl.backends import kernels
from minidl.functions import conv


@pytest.fixture
def without_torch(monkeypatch):
    """The scripts behave as on a machine without their peers, PyTorch and TensorFlow (no peer
    process is started)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *args: None if name in ('torch', 'tensorflow')
                        else find_spec(name, *args))


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
    parts = result['step_parts_ms']
    assert {'GEMM (BLAS)', 'im2col / col2im', 'pooling', 'optimizer'} <= set(parts)
    assert sum(parts.values()) == pytest.approx(result['step_ms'])
    assert result['gemm_gflops_in_step'] > 0 and result['gemm_gflops_numpy_alone'] > 0


def test_step_anatomy_charges_each_call_its_own_time_and_counts_the_gemms():
    import minidl.functions as F
    x = minidl.Tensor(np.ones((2, 5, 5, 3), np.float32), requires_grad=True)
    W = minidl.Tensor(np.ones((3, 3, 3, 4), np.float32), requires_grad=True)
    with StepAnatomy(record_calls=True) as anatomy:
        F.relu(F.conv2d(x, W)).sum().backward()
    assert [name for name, *_ in anatomy.calls] == ['im2col', 'bias_act_forward',
                                                     'bias_act_backward', 'col2im']
    # (M, K, N): cols @ W forward; cols^T @ dY and dY @ W^T backward
    assert anatomy.gemms == [(18, 27, 4), (27, 18, 4), (18, 4, 27)]
    assert gemm_flops(anatomy.gemms) == 3 * 2 * 18 * 27 * 4
    assert set(anatomy.seconds) == {'GEMM (BLAS)', 'im2col / col2im', 'bias + activation'}
    assert not hasattr(conv.Conv2d.forward, '__wrapped__')  # every wrapper is gone again


def test_kernels_roofline_replays_a_step_and_counts_the_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(kernels_roofline, 'STREAM_BYTES', 2**20)
    kernels_roofline.main(['--nets', 'mnist', '--repeat', '1', '--json',
                           str(tmp_path / 'roof.json')])
    result = json.loads((tmp_path / 'roof.json').read_text())
    assert result['roofline GB/s'] == max(result['bandwidth GB/s'].values()) > 0
    rows = {row['label']: row for row in result['nets']['mnist']}
    im2col = rows['im2col 64x28x28x1']  # x read once, (64, 26, 26, 3, 3, 1) columns written
    assert im2col['bytes'] == 4 * (64 * 28 * 28 + 64 * 26 * 26 * 9)
    update = next(row for row in rows.values() if row['kernel'] == 'rmsprop_update')
    assert update['family'] == 'optimizer' and update['calls'] >= 1
    assert {row['kernel'] for row in rows.values()} >= {
        'im2col', 'col2im', 'maxpool2d_forward', 'maxpool2d_backward', 'avgpool2d_forward',
        'bias_act_forward', 'softmax_xent_forward', 'rmsprop_update', 'sgd_update',
        'adam_update'}


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


def test_cats_steps_times_the_cats_and_dogs_net(tmp_path, capsys, without_torch):
    cats_steps.main(['--steps', '1', '--batch-size', '2', '--json', str(tmp_path / 'c.json')])
    result = json.loads((tmp_path / 'c.json').read_text())
    assert list(result['steps_per_s']) == ['minidl'] and result['steps_per_s']['minidl'] > 0
    assert 'steps/s' in capsys.readouterr().out


def test_distributed_scaling_times_one_and_two_processes(tmp_path, capsys):
    pytest.importorskip('mpi4py')
    if distributed.mpiexec() is None:
        pytest.skip("no mpiexec (pip install 'minidl[distributed]' brings MPICH's)")
    distributed_scaling.main(['--subset', '256', '--batch-size', '32', '--json',
                              str(tmp_path / 'scaling.json')])
    one, two = json.loads((tmp_path / 'scaling.json').read_text())['rows']
    assert (one['processes'], one['steps'], two['processes'], two['steps']) == (1, 8, 2, 4)
    assert one['speedup'] == 1 and two['speedup'] > 0 and two['examples'] == 256
    for row in (one, two):
        assert row['gradient_bytes'] == 4 * 93_322  # one float32 buffer of every gradient
        assert row['allreduce_calls'] == 2 * row['steps'] + 1  # metrics, gradients; the stop
        assert row['allreduce_bytes_per_step'] > row['gradient_bytes']
        assert 0 < row['allreduce_fraction'] < 1 and row['allreduce_alone_ms'] > 0
    assert one['ring_bytes_per_step'] == 0
    assert two['ring_bytes_per_step'] == two['allreduce_bytes_per_step']  # 2 (P - 1) / P = 1
    assert '| processes | epoch | steps | examples/s | speed-up |' in capsys.readouterr().out


def test_device_checks_run_each_check_in_its_time_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device_checks, 'CHECKS', [
        ('says', [sys.executable, '-c', 'print("on {out}")'], 0.5),
        ('hangs', [sys.executable, '-c', 'import time; time.sleep(30)'], 0.1)])
    results = device_checks.main(['--out', str(tmp_path), '--budget', '20'])
    assert [(r['check'], r['exit']) for r in results] == [('says', 0), ('hangs', 'timed out')]
    assert results[1]['seconds'] < 10 and results[1]['limit'] == 2
    assert (tmp_path / 'says.txt').read_text() == f'on {tmp_path}\n'
    assert json.loads((tmp_path / 'checks.json').read_text()) == results
    assert 'timed out' in capsys.readouterr().out
