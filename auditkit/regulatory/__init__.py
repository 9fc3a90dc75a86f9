"""Regulatory obligations as data (``obligations.yaml``) and their mapping onto an audit's results."""
