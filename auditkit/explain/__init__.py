"""Model explanations computed exactly from the model file (no sampling)."""
