"""Data-derived strings (class names, file names, CSV headers) in Plotly figures. Plotly
renders a subset of HTML (<a href>, <span style>, <b>, <br>) in trace names, hover text,
titles, annotations and tick labels, fills %{...} in hover templates and typesets $...$ where
MathJax is loaded; `text` makes such a string show as the characters it is."""
from __future__ import annotations

import html

# after the HTML escape: Plotly turns numeric entities back into characters only when it
# draws, so a template or TeX delimiter written this way is never parsed
_INERT = str.maketrans({"%": "&#37;", "$": "&#36;"})


def text(value) -> str:
    """str(value) as Plotly text: '<a href=x>' -> '&lt;a href=x&gt;', '%{x}' -> '&#37;{x}'."""
    return html.escape(str(value), quote=False).translate(_INERT)


def texts(values) -> list[str]:
    """text() of each value (tick labels, subplot titles)."""
    return [text(v) for v in values]
