# The one step of the scheduled pipeline: it records when it ran.
import datetime

from azureml.core import Run

now = datetime.datetime.now(datetime.UTC)
print(f"training at {now.isoformat()}")
Run.get_context().log("trained", 1)
