"""A step's ``environment.variables`` are templated like its arguments: the SDK writes Azure's
``AML_PARAMETER_<name>`` and ``AZUREML_DATAREFERENCE_<name>`` as ``${{parameters.NAME}}``, and
the script must see the run's value, not the reference."""

from __future__ import annotations

from pathlib import Path

from tests.projects import make_project
from tests.test_executor import execute


def test_variables_carry_the_run_parameter_and_data_values(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "variables",
        """
        parameters:
          initial: {type: int, default: 12}
        data:
          numbers: {}
        steps:
          write:
            type: python_script
            script: show.py
            arguments: ["${{data.numbers}}"]
            outputs: [numbers]
            environment:
              variables:
                AML_PARAMETER_initial: "${{parameters.initial}}"
                WHERE: "folder ${{data.numbers}} of run ${{run.id}}"
        """,
        {
            "show.py": """
            import os, sys
            print(os.environ["AML_PARAMETER_initial"])
            print(os.environ["WHERE"] == f"folder {sys.argv[1]} of run {os.environ['PIPESCHED_RUN_ID']}")
            """
        },
    )
    detail = execute(project, "variables", {"initial": 17})
    assert detail.run.status == "completed"
    assert Path(detail.attempts[0].log_path).read_text() == "17\nTrue\n"
