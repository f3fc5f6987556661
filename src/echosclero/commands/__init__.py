"""Sub-commands of ``echosclero``; see :mod:`echosclero.cli`."""
