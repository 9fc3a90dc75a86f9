"""Audits compared with each other: change over time and reproduction.

- :mod:`~auditkit.results.io` reads a results.json given as an input (its schema version
  named when it is not the one this auditkit reads).
- :mod:`~auditkit.engine.baseline` gives ``auditkit run`` the baseline figures that
  ``max_decrease`` / ``max_increase`` thresholds compare with.
- :mod:`~auditkit.compare.diff` computes ``auditkit diff``: per check and metric, the change,
  whether it is a regression, and the inputs that differ. Rendering is in ``auditkit.render``.
- :mod:`~auditkit.compare.verify` re-runs the audit a results.json records and compares
  every figure (``auditkit verify``).

Computing only: nothing here prints, exits or renders.
"""
