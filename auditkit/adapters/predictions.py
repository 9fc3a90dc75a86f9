"""Predictions mode: no model, only the scores and/or decisions someone else's model made."""
from __future__ import annotations

from typing import Any

import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter
from auditkit.errors import CheckError

NO_MODEL_REASON = "predictions mode: there is no model to query, only the decisions recorded in the data"


class PredictionsAdapter(ModelAdapter):
    format = "predictions"
    can_query = False
    classes = None
    input_features = None

    def __init__(self, spec: AdapterSpec):
        super().__init__()
        self.spec = spec
        self.path = None
        self.sha256 = None
        self.task = "binary"
        self.score_kind = "probability"  # refined by the engine from the score column
        self.kind = "predictions: recorded scores/decisions"
        self.positive_class = spec.positive_class

    def _predict_batch(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        raise CheckError(NO_MODEL_REASON)
