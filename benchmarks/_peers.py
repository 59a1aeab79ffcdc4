"""A helper of the benchmark scripts, not a script: the lessons' convnets in minidl, PyTorch and
Keras 3 on TensorFlow, built from one description, and the time each takes to train.

Each peer runs in a process of its own (``_separate_process.py``): ``python SCRIPT --peer NAME``
prints its seconds as JSON. Keras 3 is asked for the TensorFlow backend (``KERAS_BACKEND``),
the fastest of its backends on this machine's CPU.
"""
import importlib.util
import os
import time

import numpy as np

from _separate_process import run_json

# A net: its input shape, its layers, the loss and the RMSprop learning rate of the lesson.
NETS = {
    'mnist': dict(input=(28, 28, 1),
                  layers=[('conv', 32), ('pool',), ('conv', 64), ('pool',), ('conv', 64),
                          ('flatten',), ('dense', 64, 'relu'), ('dense', 10, 'softmax')],
                  loss='categorical_crossentropy', lr=1e-3),
    'cats': dict(input=(150, 150, 3),
                 layers=[('conv', 32), ('pool',), ('conv', 64), ('pool',), ('conv', 128),
                         ('pool',), ('conv', 128), ('pool',), ('flatten',), ('dropout', 0.5),
                         ('dense', 512, 'relu'), ('dense', 1, 'sigmoid')],
                 loss='binary_crossentropy', lr=1e-4),
}
PEERS = {'torch': 'torch', 'keras': 'tensorflow'}  # peer -> the package it needs


def blas_line():
    """One line naming NumPy's BLAS and the kernels it runs, on which every GEMM's speed hangs.

    OpenBLAS picks its kernels for the CPU when it loads, unless ``OPENBLAS_CORETYPE`` names
    others; some machines set that variable (and ``OPENBLAS_L2_SIZE``) for older OpenBLAS
    builds, and on this project's development machine it halves the GEMMs (Haswell's AVX2
    kernels on an AVX-512 CPU). The line says when the kernels were forced.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 'NumPy BLAS: not known (threadpoolctl is not installed)'
    libraries = [f"{info['internal_api']} {info['version']}, {info.get('architecture')} "
                 f"kernels, {info['num_threads']} threads"
                 for info in threadpool_info() if info['user_api'] == 'blas']
    forced = os.environ.get('OPENBLAS_CORETYPE')
    return (f"NumPy BLAS: {'; '.join(libraries) or 'none found'}" +
            (f' (forced by OPENBLAS_CORETYPE={forced}; unset it, and OPENBLAS_L2_SIZE, to let '
             'OpenBLAS choose)' if forced else ''))


def available_peers():
    return [peer for peer, package in PEERS.items()
            if importlib.util.find_spec(package) is not None]


def minidl_model(net):
    from minidl import layers, models, optimizers
    spec = NETS[net]
    model = models.Sequential([layers.Input(spec['input'])])
    for kind, *args in spec['layers']:
        model.add({'conv': lambda f: layers.Conv2D(f, (3, 3), activation='relu'),
                   'pool': lambda: layers.MaxPooling2D((2, 2)),
                   'flatten': layers.Flatten, 'dropout': layers.Dropout,
                   'dense': lambda units, act: layers.Dense(units, activation=act)}[kind](*args))
    model.compile(optimizers.RMSprop(learning_rate=spec['lr']), spec['loss'], ['acc'])
    return model


def _torch_model(torch, net):
    nn = torch.nn
    spec = NETS[net]
    modules, channels, size = [], spec['input'][2], spec['input'][0]
    for kind, *args in spec['layers']:
        if kind == 'conv':
            modules += [nn.Conv2d(channels, args[0], 3), nn.ReLU()]
            channels, size = args[0], size - 2
        elif kind == 'pool':
            modules.append(nn.MaxPool2d(2))
            size //= 2
        elif kind == 'flatten':
            modules.append(nn.Flatten())
            channels *= size * size
        elif kind == 'dropout':
            modules.append(nn.Dropout(args[0]))
        else:  # the last activation is fused into the loss, as minidl fuses it
            modules.append(nn.Linear(channels, args[0]))
            channels = args[0]
            if args[1] == 'relu':
                modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def torch_seconds(net, x, y, batch_size, device):
    """Seconds for one pass over (x, y) in PyTorch eager mode, after a two-batch warm-up."""
    import torch
    nn, spec = torch.nn, NETS[net]
    device = 'cuda' if device == 'gpu' else 'cpu'
    model = _torch_model(torch, net).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=spec['lr'], alpha=0.9, eps=1e-7)
    xs = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if spec['loss'] == 'categorical_crossentropy':
        ys, loss = torch.from_numpy(y.argmax(axis=1)), nn.functional.cross_entropy
    else:
        ys, loss = torch.from_numpy(y), nn.functional.binary_cross_entropy_with_logits
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

    def run(count):
        order = torch.randperm(count)
        for start in range(0, count, batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            loss(model(xs[index].to(device)), ys[index].to(device)).backward()
            optimizer.step()
        sync()

    run(2 * batch_size)
    start = time.perf_counter()
    run(len(xs))
    return time.perf_counter() - start, f'torch {torch.__version__}, ' \
                                        f'{torch.get_num_threads()} threads'


def keras_seconds(net, x, y, batch_size, device):
    """Seconds for one ``fit`` pass over (x, y) in Keras 3 on TensorFlow, after a warm-up that
    traces the step for the full and the last, partial batch."""
    os.environ['KERAS_BACKEND'] = 'tensorflow'
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import keras
    spec = NETS[net]
    model = keras.Sequential([keras.Input(spec['input'])])
    for kind, *args in spec['layers']:
        model.add({'conv': lambda f: keras.layers.Conv2D(f, (3, 3), activation='relu'),
                   'pool': lambda: keras.layers.MaxPooling2D((2, 2)),
                   'flatten': keras.layers.Flatten, 'dropout': keras.layers.Dropout,
                   'dense': lambda units, act: keras.layers.Dense(units, activation=act)}[kind](
                       *args))
    model.compile(optimizer=keras.optimizers.RMSprop(spec['lr']), loss=spec['loss'],
                  metrics=['acc'])
    warm = 2 * batch_size + len(x) % batch_size
    model.fit(x[:warm], y[:warm], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    return time.perf_counter() - start, f'Keras {keras.__version__} on TensorFlow ' \
                                        f'{__import__("tensorflow").__version__}'


SECONDS = {'torch': torch_seconds, 'keras': keras_seconds}


def add_output_arguments(parser):
    """The options every peer-timing script shares: ``--json`` and the internal ``--peer``."""
    parser.add_argument('--json', help='also write the results to this JSON file (default: '
                                       'none)')
    parser.add_argument('--peer', choices=sorted(SECONDS),
                        help='time this peer alone and print the result as JSON, used '
                             'internally (default: time minidl, then each peer in a process '
                             'of its own)')


def peer_seconds(script, peer, *args):
    """{'seconds', 'version'} of ``peer`` timed by ``script --peer peer *args`` in a process
    of its own."""
    return run_json(script, '--peer', peer, *args)
