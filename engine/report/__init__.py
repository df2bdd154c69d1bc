"""The incident status report: what a manager or an auditor reads without the CLI.

``gather`` reads one incident through the read model into a :class:`~engine.report.gather.StatusReport`
(counts only, never an affected person's data); ``charts`` draws its clocks and notification progress
as static SVG with matplotlib; ``render`` lays it out as one self-contained HTML file (and, through
WeasyPrint, PDF). ``kpi`` measures response times across incidents. The web dashboard shows the same
report live.
"""
