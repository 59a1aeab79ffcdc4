"""Smoke runs of examples/transfer_learning.py on small subsets: the MNIST flow (pretrain,
save, reload, freeze, extract, fine-tune, from scratch) and the photo-folder flow with a
weight file."""
import json

import numpy as np
import transfer_learning
from PIL import Image

from minidl.applications import MobileNet

STAGES = ['from scratch, augmented', '1. features + Dense head',
          '2. frozen base + head, augmented', '3. last block fine-tuned']


def test_the_mnist_flow_runs_every_stage_and_writes_its_results(tmp_path, capsys):
    rows = transfer_learning.main(['--out', str(tmp_path), '--images', '40',
                                   '--pretrain-images', '200', '--pretrain-epochs', '1',
                                   '--test-images', '200',
                                   '--epochs', '1', '--verbose', '0'])
    out = capsys.readouterr().out
    assert [row['stage'] for row in rows] == STAGES
    assert [row['epochs'] for row in rows] == [2, 1, 1, 1]
    assert 'Non-trainable params: 108,720' in out  # the frozen base, in the summary
    assert 'fine-tuning from block3_conv1' in out
    assert all(name in out for name in STAGES)
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert [row['test_acc'] for row in saved['stages']] == [row['test_acc'] for row in rows]
    assert all(0 <= row['test_acc'] <= 1 for row in rows)
    assert (tmp_path / 'curves.png').stat().st_size > 0
    assert (tmp_path / 'base.h5').stat().st_size > 0


def test_the_folder_flow_loads_a_weight_file_and_fine_tunes_its_last_block(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for part in ('train', 'validation'):
        for label in ('cats', 'dogs'):
            folder = tmp_path / 'data' / part / label
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f'{i}.png')
    weights = tmp_path / 'mobilenet_2_5_tiny_no_top.h5'
    MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False,
              weights=None).save_weights(weights)
    rows = transfer_learning.main(['--weights', str(weights), '--data', str(tmp_path / 'data'),
                                   '--alpha', '0.25', '--image-size', '32', '--epochs', '1',
                                   '--batch-size', '4', '--out', str(tmp_path / 'out'),
                                   '--verbose', '0'])
    assert [row['stage'] for row in rows] == STAGES
    assert 'fine-tuning from conv_dw_13' in capsys.readouterr().out
