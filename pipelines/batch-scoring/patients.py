"""Synthetic patients shaped like the diabetes-training example's data (the same ten features),
for sample files to score and for the stand-in model trained when no model is given."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [
    "Pregnancies",
    "PlasmaGlucose",
    "DiastolicBloodPressure",
    "TricepsThickness",
    "SerumInsulin",
    "BMI",
    "DiabetesPedigree",
    "Age",
    "HbA1c",
    "Cholesterol",
]


def patients(rng: np.random.Generator, n: int, first_id: int = 2_000_000) -> pd.DataFrame:
    glucose = rng.normal(115, 30, n).clip(45, 200)
    return pd.DataFrame(
        {
            "PatientID": np.arange(first_id, first_id + n),
            "Pregnancies": rng.poisson(3, n).clip(0, 14),
            "PlasmaGlucose": glucose.round(),
            "DiastolicBloodPressure": rng.normal(72, 12, n).clip(40, 120).round(),
            "TricepsThickness": rng.normal(28, 10, n).clip(7, 60).round(),
            "SerumInsulin": rng.lognormal(4.3, 0.6, n).clip(15, 800).round(),
            "BMI": rng.normal(31, 7, n).clip(18, 56).round(1),
            "DiabetesPedigree": rng.gamma(2.0, 0.25, n).clip(0.08, 2.4).round(3),
            "Age": (21 + rng.gamma(2.0, 8.0, n)).clip(21, 80).round(),
            "HbA1c": (3.2 + glucose / 45 + rng.normal(0, 0.5, n)).round(1),
            "Cholesterol": rng.normal(190, 35, n).clip(110, 320).round(),
        }
    )


def labels(data: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """The same logistic rule as the training example's prep step."""
    logit = (
        -1.0
        + 0.035 * (data["PlasmaGlucose"] - 115)
        + 0.08 * (data["BMI"] - 31)
        + 0.04 * (data["Age"] - 37)
        + 1.2 * (data["DiabetesPedigree"] - 0.5)
        + 0.12 * (data["Pregnancies"] - 3)
    )
    return pd.Series((rng.random(len(data)) < 1 / (1 + np.exp(-logit))).astype(int))
