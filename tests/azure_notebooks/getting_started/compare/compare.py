# Step script that compares two candidate models (here: two fixed scores).
from azureml.core import Run

run = Run.get_context()
scores = {"model_a": 0.81, "model_b": 0.86}
best = max(scores, key=scores.get)
print("compare_step: best model is", best)
run.log("best_score", scores[best])
