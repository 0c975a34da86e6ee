"""Decision-boundary analyses (absl-flag scripts): ``python -m analysis.probe``,
``analysis.vulnerability``, ``analysis.open_questions``, ``analysis.redraw``."""
