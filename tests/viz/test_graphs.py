"""plot_model and plot_graph: the graphs they describe (no Graphviz needed), the DOT text, and
the pictures where Graphviz's ``dot`` is installed."""
import shutil

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import layers, models, utils, viz
from minidl.viz import graphs

needs_dot = pytest.mark.skipif(shutil.which('dot') is None,
                               reason="needs Graphviz's dot program (apt-get install graphviz)")


def small_convnet():
    return models.Sequential([layers.Conv2D(4, (3, 3), activation='relu', input_shape=(8, 8, 1)),
                              layers.MaxPooling2D((2, 2)), layers.Flatten(),
                              layers.Dense(3, activation='softmax')])


def labels(graph):
    return {key: lines for key, (lines, _) in graph.nodes.items()}


def test_a_sequential_model_is_a_chain_of_boxes_from_its_input_layer():
    model = small_convnet()
    graph = graphs.model_graph(model, show_shapes=True, show_layer_activations=True)
    names = [layer.name for layer in model.layers]
    start = model.inputs[0].layer.name
    assert list(graph.nodes) == [start] + names
    assert graph.edges == list(zip([start] + names, names))
    conv = labels(graph)[names[0]]
    assert conv == [f'{names[0]} (Conv2D)', 'activation: relu', 'input: (None, 8, 8, 1)',
                    'output: (None, 6, 6, 4)']
    assert labels(graph)[names[2]][-1] == 'output: (None, 36)'
    assert labels(graph)[names[1]][:2] == [f'{names[1]} (MaxPooling2D)', 'input: (None, 6, 6, 4)']


def test_the_options_choose_the_lines_of_each_box():
    model = small_convnet()
    model.layers[0].trainable = False
    graph = graphs.model_graph(model, show_layer_names=False, show_trainable=True)
    assert labels(graph)[model.layers[0].name] == ['Conv2D', 'trainable: False']
    assert labels(graph)[model.layers[3].name] == ['Dense', 'trainable: True']


def test_a_branching_model_has_an_edge_for_every_input_of_a_merge():
    inputs = layers.Input(shape=(6,))
    left = layers.Dense(4, name='left')(inputs)
    right = layers.Dense(4, name='right')(inputs)
    merged = layers.Add(name='sum')([left, right])
    model = models.Model(inputs, layers.Dense(2, name='out')(merged))
    graph = graphs.model_graph(model, show_shapes=True)
    start = inputs.layer.name
    assert set(graph.edges) == {(start, 'left'), (start, 'right'), ('left', 'sum'),
                                ('right', 'sum'), ('sum', 'out')}
    assert labels(graph)['sum'][1] == 'input: [(None, 4), (None, 4)]'


def test_a_shared_layer_called_on_different_shapes_shows_multiple():
    shared = layers.GlobalMaxPooling1D(name='shared')
    a, b = layers.Input(shape=(None, 3)), layers.Input(shape=(5, 3))
    model = models.Model([a, b], [shared(a), shared(b)])
    graph = graphs.model_graph(model, show_shapes=True)
    assert labels(graph)['shared'][1:] == ['input: multiple', 'output: (None, 3)']
    assert {(a.layer.name, 'shared'), (b.layer.name, 'shared')} == set(graph.edges)


def test_expand_nested_frames_a_nested_model_and_wires_through_it():
    inputs = layers.Input(shape=(8, 8, 1))
    base = models.Model(inputs, layers.Conv2D(2, (3, 3), name='base_conv')(inputs), name='base')
    model = models.Sequential([base, layers.Flatten(name='flat'), layers.Dense(2, name='out')])
    outer_start = model.inputs[0].layer.name
    folded = graphs.model_graph(model)
    assert ('base', 'flat') in folded.edges and not folded.clusters
    graph = graphs.model_graph(model, expand_nested=True)
    inner = [f'base/{inputs.layer.name}', 'base/base_conv']
    assert graph.clusters == {'base': inner}
    assert set(graph.edges) == {(outer_start, inner[0]), (inner[0], inner[1]),
                                (inner[1], 'flat'), ('flat', 'out')}
    assert 'subgraph cluster_0' in graphs.to_dot(graph)


def test_an_unbuilt_model_cannot_be_drawn():
    with pytest.raises(ValueError, match='no layers built'):
        graphs.model_graph(models.Sequential([layers.Dense(2)]))


def test_dot_text_quotes_names_and_checks_the_direction():
    graph = graphs.Graph()
    graph.node('a"b', ['say "hi"', 'back\\slash'])
    graph.node('c', ['c'])
    graph.edge('a"b', 'c')
    text = graphs.to_dot(graph, rankdir='LR')
    assert '"a\\"b" [label="say \\"hi\\"\\nback\\\\slash"' in text
    assert '"a\\"b" -> "c";' in text and 'rankdir=LR;' in text
    with pytest.raises(ValueError, match="rankdir must be 'TB'"):
        graphs.to_dot(graph, rankdir='up')


def mlp_loss():
    x = minidl.tensor(np.ones((4, 3)), requires_grad=True, name='x')
    w = minidl.tensor(np.ones((3, 2)), requires_grad=True, name='w')
    return F.relu(x @ w) * 2, x, w


def test_the_autograd_graph_has_each_function_its_inputs_and_its_output_shape():
    y, x, w = mlp_loss()
    graph = graphs.autograd_graph(y)
    functions = [lines[0] for key, lines in labels(graph).items() if str(key).startswith('fn')]
    assert functions == ['Mul', 'BiasActivation', 'MatMul']  # from the output back
    assert labels(graph)[id(x)] == ['x', '(4, 3) float64']
    assert labels(graph)[id(w)] == ['w', '(3, 2) float64']
    assert labels(graph)[id(y)] == ['output', '(4, 2) float64']
    matmul = next(key for key, lines in labels(graph).items() if lines == ['MatMul'])
    assert (id(x), matmul) in graph.edges and (id(w), matmul) in graph.edges
    [matmul_out] = [b for a, b in graph.edges if a == matmul]
    assert labels(graph)[matmul_out] == ['(4, 2)']
    # one edge out of each function; in: x and w, one into the ReLU and one into Mul (its
    # constant 2 takes no gradient, so it is not drawn)
    assert len(graph.edges) == 7


def test_a_value_used_twice_is_one_oval_with_two_consumers():
    x = minidl.tensor(np.ones(3), requires_grad=True, name='x')
    h = F.exp(x)
    y = (h + h * 3).sum()
    graph = graphs.autograd_graph(y)
    exp = next(key for key, lines in labels(graph).items() if lines == ['Exp'])
    [h_oval] = [b for a, b in graph.edges if a == exp]
    assert len([b for a, b in graph.edges if a == h_oval]) == 2


def test_a_retained_tensor_keeps_its_name_in_the_graph():
    x = minidl.tensor(np.ones(3, np.float32), requires_grad=True)
    h = F.exp(x)
    h.name = 'features'
    h.retain_grad()
    y = h.sum()
    assert labels(graphs.autograd_graph(y))[id(h)] == ['features', '(3,) float32']


def test_a_freed_graph_and_a_non_tensor_are_refused():
    y, _, _ = mlp_loss()
    y.sum().backward()
    with pytest.raises(ValueError, match='freed by backward'):
        graphs.autograd_graph(y)
    with pytest.raises(TypeError, match='expected a minidl Tensor, got ndarray'):
        graphs.autograd_graph(np.ones(3))


def test_without_dot_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(graphs.shutil, 'which', lambda name: None)
    with pytest.raises(RuntimeError, match='apt-get install graphviz.*model_to_dot'):
        utils.plot_model(small_convnet(), tmp_path / 'model.png')
    with pytest.raises(RuntimeError, match='plot_graph needs .*graph_to_dot'):
        viz.plot_graph(mlp_loss()[0], tmp_path / 'graph.png')
    assert not list(tmp_path.iterdir())


@needs_dot
def test_plot_model_draws_a_png_and_an_svg_naming_the_layers(tmp_path):
    model = small_convnet()
    png = utils.plot_model(model, tmp_path / 'model.png', show_shapes=True)
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    svg = viz.plot_model(model, tmp_path / 'model.svg').read_text()
    assert all(layer.name in svg for layer in model.layers)


@needs_dot
def test_plot_graph_draws_the_autograd_graph(tmp_path):
    svg = viz.plot_graph(mlp_loss()[0], tmp_path / 'graph.svg').read_text()
    assert 'MatMul' in svg and '(4, 3) float64' in svg


@needs_dot
def test_a_format_graphviz_does_not_know_is_its_error(tmp_path):
    with pytest.raises(RuntimeError, match="could not draw .*'nosuchformat'"):
        viz.plot_model(small_convnet(), tmp_path / 'model.nosuchformat')
    assert not list(tmp_path.iterdir())

