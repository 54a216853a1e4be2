"""The text views of a :class:`~repurpose.source.SourceModel`: its one-line ``repr`` and the
aligned layer table ``repurpose layers`` prints.

The functions here are ``SourceModel`` methods, bound in its class body (``self`` is the
model).
"""

__all__ = ["describe", "model_repr"]


def model_repr(self):
    """``SourceModel('name', 9 layers, input_shape=(1, 8, 8))``."""
    shape = self.input_shape if self.input_shape else "unknown"
    return (f"SourceModel({self.metadata.get('name', 'unnamed')!r}, "
            f"{len(self.layer_names)} layers, input_shape={shape})")


def describe(self, input_shape=None):
    """Return the layer table as aligned text (what ``repurpose layers`` prints).

    Parameters
    ----------
    input_shape : tuple of int, default=None
        Shape of one sample, for the output shapes; defaults to the model's.

    Returns
    -------
    str
        One row per layer of :attr:`layer_names` (index, name, operator, output shape per
        sample, parameter count), then a line with the totals.

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> print(SourceModel.from_zoo('digits_cnn').describe())  # doctest: +ELLIPSIS
     #  layer         operator        output shape  params
     0  conv1_fwd     Convolution     16x8x8           160
    ...
    15 layers, 28,229 parameters, input shape (1, 8, 8)
    """
    table = self.layer_table(input_shape)
    rows = [("#", "layer", "operator", "output shape", "params")]
    for i, layer in enumerate(table):
        shape = "x".join(str(s) for s in layer.output_shape[1:]) if layer.output_shape \
            else "?"
        rows.append((str(i), layer.name, layer.op, shape, f"{layer.n_params:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = ["  ".join(cell.rjust(w) if c in (0, 4) else cell.ljust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    total = sum(layer.n_params for layer in table)
    lines.append(f"{len(table)} layers, {total:,} parameters, input shape "
                 f"{self.input_shape or input_shape or 'unknown'}")
    return "\n".join(lines)
