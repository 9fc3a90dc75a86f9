"""The reusable computations behind the checks: groups and rates, bootstrap statistics, row
selection, probes of the model, SHAP values, linear models, scorers, LIME, ONNX trees,
noisy copies of rows (noise), the recourse search (recourse/), the anchors search
(anchor_search/).

Checks (``auditkit.checks``) are thin: they read params, call these, and shape a result.
A method knows nothing of the registry, of thresholds or of reports.
"""
