"""Recourse: the nearest actionable change that turns an unfavourable decision around.

- :mod:`~auditkit.methods.recourse.constraints`: what may change, within which bounds, and the
  distance of a change (:class:`~auditkit.methods.recourse.constraints.Space`);
- :mod:`~auditkit.methods.recourse.search`: the model-agnostic search for each row's cheapest
  counterfactual;
- :mod:`~auditkit.methods.recourse.burden`: recourse rate and burden compared between groups,
  with bootstrap intervals.
"""
