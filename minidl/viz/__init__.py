"""Looking inside a trained convnet, as the lessons do: training curves, the feature maps a
layer produces, the input pattern each filter responds to most, and class activation maps.

Every plotting function returns a Matplotlib ``Figure`` made without ``pyplot`` (so nothing
is drawn on a screen or kept in a global list); ``path=`` also saves it, atomically.
"""
from minidl.viz.cam import grad_cam, overlay_heatmap
from minidl.viz.curves import plot_history, smooth_curve
from minidl.viz.features import activation_model, feature_map_grid, plot_feature_maps
from minidl.viz.filters import deprocess_image, filter_pattern, plot_filter_patterns

__all__ = ['activation_model', 'deprocess_image', 'feature_map_grid', 'filter_pattern',
           'grad_cam', 'overlay_heatmap', 'plot_feature_maps', 'plot_filter_patterns',
           'plot_history', 'smooth_curve']
