"""BatchNormalization(synchronized=True) on 2 MPI ranks: 2 ranks of batch 16 train exactly as
1 process of batch 32 on the same examples, the moving statistics included, even where the
last global batch is cut unevenly (71 examples: 4 + 3) or leaves a rank a Weightless batch
(65 examples: 1 + 0); with synchronized=False each rank's moving statistics are its own."""
import json

import numpy as np

SCRIPT = '''
import json

import numpy as np

import minidl
from minidl import distributed, layers, models, optimizers

comm = distributed.init()
f64 = {'dtype': 'float64'}  # float64: the pieces' sums differ from one batch's by rounding only


def train(examples, synchronized, parallel):
    """The trainable weights and bn's moving statistics after 2 epochs, unshuffled."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((examples, 3, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    y = rng.standard_normal((examples, 2))
    minidl.random.seed(0)
    model = models.Sequential([
        layers.Input((3, 4), dtype='float64'), layers.Dense(5, **f64),
        layers.BatchNormalization(momentum=0.5, synchronized=synchronized, name='bn', **f64),
        layers.Activation('relu', **f64), layers.Flatten(), layers.Dense(2, **f64)])
    model.compile(optimizers.SGD(0.1), 'mse')
    model.fit(x, y, batch_size=16 if parallel else 32, epochs=2, shuffle=False, verbose=0,
              distributed=parallel)
    bn = model.get_layer('bn')
    return {'trainable': [w.numpy().tolist() for w in model.trainable_weights],
            'moving': [bn.moving_mean.numpy().tolist(), bn.moving_variance.numpy().tolist()]}


results = {}
for examples in (64, 71, 65):
    for synchronized in (True, False):
        results[f'{examples} {synchronized}'] = {
            'ranks': comm.gather_values(train(examples, synchronized, True), 'the weights'),
            'single': train(examples, synchronized, False)}
if comm.rank == 0:
    with open('results.json', 'w') as file:
        json.dump(results, file)
'''


def difference(a, b, part):
    """The largest difference between the arrays of ``part`` of two runs."""
    return max(np.abs(np.array(x) - np.array(y)).max() for x, y in zip(a[part], b[part]))


def test_synchronized_batch_norm_on_2_ranks_trains_as_1_process_on_the_global_batch(
        run_ranks, tmp_path):
    run_ranks(SCRIPT)
    results = json.loads((tmp_path / 'results.json').read_text())
    for examples in (64, 71, 65):
        ranks, single = results[f'{examples} True']['ranks'], results[f'{examples} True']['single']
        for part in ('trainable', 'moving'):
            assert difference(ranks[0], ranks[1], part) == 0, (examples, part)
            assert difference(ranks[0], single, part) < 1e-12, (examples, part)
        local = results[f'{examples} False']['ranks']
        assert difference(local[0], local[1], 'trainable') == 0, examples
        assert difference(local[0], local[1], 'moving') > 1e-2, examples
