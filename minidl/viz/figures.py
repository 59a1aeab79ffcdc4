"""What the viz modules share: figures made without pyplot, saved atomically or shown inline
in HTML."""
import base64
import html
import io

from matplotlib.figure import Figure

from minidl.utils import atomic_write


def new_figure(width, height):
    """A Figure of ``width`` x ``height`` inches that no pyplot state knows about."""
    return Figure(figsize=(width, height))


def finish(fig, path):
    """Lay the figure out, save it to ``path`` (all or nothing) if one is given, return it."""
    fig.tight_layout()
    if path is not None:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    return fig


def figure_html(fig, alt='figure', dpi=100):
    """The figure as an HTML ``<img>`` holding its PNG inline (base64), for pages built from
    Markdown (the docs site prints it from its code blocks) and for notebooks."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode('ascii')
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
