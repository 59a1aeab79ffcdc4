"""Looking inside a trained convnet, as the lessons do: training curves, the feature maps a
layer produces, the input pattern each filter responds to most, and class activation maps.

Every plotting function returns a Matplotlib ``Figure`` made without ``pyplot`` (so nothing
is drawn on a screen or kept in a global list); ``path=`` also saves it, atomically.
:func:`plot_graph` draws the autograd graph behind a tensor, and :func:`plot_model` a
model's layers (also ``minidl.utils.plot_model``), through Graphviz.
"""
from minidl.viz.cam import grad_cam, overlay_heatmap
from minidl.viz.curves import plot_history, smooth_curve
from minidl.viz.features import activation_model, feature_map_grid, plot_feature_maps
from minidl.viz.figures import figure_html
from minidl.viz.filters import deprocess_image, filter_pattern, plot_filter_patterns
from minidl.viz.graphs import graph_to_dot, model_to_dot, plot_graph, plot_model

__all__ = ['activation_model', 'deprocess_image', 'feature_map_grid', 'figure_html',
           'filter_pattern', 'grad_cam', 'graph_to_dot', 'model_to_dot', 'overlay_heatmap',
           'plot_feature_maps', 'plot_filter_patterns', 'plot_graph', 'plot_history',
           'plot_model', 'smooth_curve']
