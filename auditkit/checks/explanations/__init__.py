"""Global explanations: what drives the model's scores across the audit data."""
