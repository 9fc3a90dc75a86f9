"""The contract's rules, in one place each: the check registry, metric names and how a
threshold applies to them, the decision rule, and the parameters every check shares.

The lowest layer of the package after ``errors``: it imports no other auditkit package.
"""
