"""The rtlab report generator: plots, Markdown and HTML from a results
database (report.py), trends across commits (trends.py)."""
