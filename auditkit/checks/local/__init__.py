"""Local explanations and recourse: why was this decision made, and what would change it."""
