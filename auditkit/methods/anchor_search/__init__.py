"""Anchors (Ribeiro, Singh and Guestrin 2018), kept in pure parts so that each can be tested alone:

- :mod:`~auditkit.methods.anchor_search.predicates`: discretisation (``quantile_edges``,
  ``readable_edges``), a row's predicates (``row_predicates``), an anchor's conditions, its rule
  text and exact coverage (``CoverageIndex``);
- :mod:`~auditkit.methods.anchor_search.sampling`: D(z | A), the perturbation distribution
  conditioned on an anchor (``ConditionalSampler``);
- :mod:`~auditkit.methods.anchor_search.bandit`: Bernoulli KL confidence bounds and KL-LUCB;
- :mod:`~auditkit.methods.anchor_search.beam`: the beam search and one row's explanation.
"""
