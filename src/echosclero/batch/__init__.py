"""Batch analysis: one source into one analysis document, and whole archives on Dask.

* :func:`analyse_source` — a fresh guidance engine over every frame of one source
  (``echosclero.analysis/1`` document; the unit of work of every non-live path).
* :func:`analyse_archive` — every file of a folder, on a local Dask cluster, any Dask scheduler, or in this
  process; per-file JSON, and a summary (:mod:`echosclero.batch.summary`) as CSV, Markdown and a table.

Heavy imports (Dask, the engine) happen inside the functions.
"""

from __future__ import annotations

from echosclero.batch.analysis import SCHEMA, SourceAnalysis, analyse_source
from echosclero.batch.archive import ArchiveOptions, ArchiveResult, FileOutcome, analyse_archive, analyse_file
from echosclero.batch.summary import FileSummary, summarise_document, summary_csv, summary_markdown, summary_table

__all__ = [
    "SCHEMA",
    "ArchiveOptions",
    "ArchiveResult",
    "FileOutcome",
    "FileSummary",
    "SourceAnalysis",
    "analyse_archive",
    "analyse_file",
    "analyse_source",
    "summarise_document",
    "summary_csv",
    "summary_markdown",
    "summary_table",
]
