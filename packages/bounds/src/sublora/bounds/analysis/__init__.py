"""Analysis of many runs (a sweep's results directory): records, summary tables, figures.

Reads every run's manifest and certificate (never logs): ``collect`` turns them
into flat records, ``summarize`` groups them by condition (mean +- std over the
replicate axes, e.g. seeds), ``write_tables`` writes CSV and LaTeX, and
``sublora.bounds.analysis.plots`` draws the figures (matplotlib, imported only there).
"""

from sublora.bounds.analysis.collect import RunRecord, collect
from sublora.bounds.analysis.tables import Summary, summarize, write_tables

__all__ = ["RunRecord", "Summary", "collect", "summarize", "write_tables"]
