"""Luigi runner for the peers benchmark: ``python peers_luigi.py MARKERS PYTHON SCRIPT ...``.

Runs in its own virtual environment. Each script is one task requiring the previous one; a task is
complete when its marker file in MARKERS (a fresh folder per run) exists, as Luigi expects of a
task with an output. Local scheduler, one worker."""

import subprocess
import sys
from pathlib import Path

import luigi

MARKERS, PYTHON, SCRIPTS = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


class Step(luigi.Task):
    index = luigi.IntParameter()

    def requires(self):
        return Step(index=self.index - 1) if self.index else []

    def output(self):
        return luigi.LocalTarget(str(MARKERS / f"s{self.index}.done"))

    def run(self) -> None:
        subprocess.run([PYTHON, SCRIPTS[self.index]], check=True)
        Path(self.output().path).touch()


if __name__ == "__main__":
    ok = luigi.build([Step(index=len(SCRIPTS) - 1)], local_scheduler=True, log_level="WARNING")
    sys.exit(0 if ok else 1)
