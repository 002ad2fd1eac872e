"""Step models, one per step type, each the local counterpart of an Azure ML SDK v1 step.

Fields keep Azure's names. Relative paths are resolved against the pipeline folder through the
validation context (``{"directory": Path}``), so a validated step only holds absolute paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scheduler.core.durations import backoff_wait, parse_duration
from scheduler.definitions.templating import (
    find_references,
    partially_substitute,
    scan,
    substitute,
)


def _duration(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value  # let strict float validation report the type
    if isinstance(value, str | int | float):
        return parse_duration(value)
    return value


def _text(value: Any) -> Any:
    """Numbers written in a list of strings become strings (``[--epochs, 10]``)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return value


def _texts(value: Any) -> Any:
    return [_text(v) for v in value] if isinstance(value, list) else value


def _text_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if isinstance(v, bool) else _text(v) for k, v in value.items()}
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
StrList = Annotated[list[str], BeforeValidator(_texts)]
Scalar = str | int | float | bool | None


class Model(BaseModel):
    """Strict, closed models: YAML's ``yes`` is not a string and unknown keys are mistakes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Environment(Model):
    """How a step's process is started: its interpreter and extra environment variables."""

    python: str | None = None
    variables: Annotated[dict[str, str], BeforeValidator(_text_values)] = Field(
        default_factory=dict
    )


StepType = Literal["python_script", "data_transfer", "parallel_run", "command", "notebook", "sql"]


class StepBase(Model):
    """Fields every step type has."""

    HIDDEN_KEYS: ClassVar[tuple[str, ...]] = ("id",)
    # Fields whose strings get ${{...}} substituted; the others are names or files checked when
    # the definition is validated.
    TEMPLATED: ClassVar[tuple[str, ...]] = ()
    # Fields that name one data item this step writes (besides ``outputs``).
    PRODUCING: ClassVar[tuple[str, ...]] = ()
    # Fields that name a file, relative to source_directory, which must exist.
    FILES: ClassVar[tuple[str, ...]] = ()

    id: str
    type: StepType
    display_name: str = ""
    source_directory: Path = Field(default=Path("."), validate_default=True)
    inputs: StrList = Field(default_factory=list)
    outputs: StrList = Field(default_factory=list)
    depends_on: StrList = Field(default_factory=list)
    allow_reuse: bool = True
    compute: str = "local"
    timeout: Duration | None = None
    retries: int = Field(default=0, ge=0)
    # The wait before retry n is retry_delay × retry_backoff^(n-1), at most retry_max_delay.
    retry_delay: Duration = 0.0
    retry_backoff: float = Field(default=1.0, ge=1.0)
    retry_max_delay: Duration = 600.0
    environment: Environment = Field(default_factory=Environment)
    # On a warm compute target: false spawns this step instead of forking it from the zygote.
    warm: bool = True

    @model_validator(mode="before")
    @classmethod
    def _display_name_defaults_to_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("display_name") is None and "id" in data:
            return {**data, "display_name": data["id"]}
        return data

    @field_validator("source_directory", mode="before")
    @classmethod
    def _absolute_source_directory(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str | os.PathLike):
            return value
        base = (info.context or {}).get("directory")
        path = Path(value)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        return Path(os.path.normpath(os.path.abspath(path)))

    # -- what the executor and validation ask of every step --------------------------------

    def retry_wait(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` failed, before the next one."""
        return backoff_wait(
            self.retry_delay, self.retry_backoff, self.retry_max_delay, failed_attempt
        )

    def produces(self) -> list[str]:
        """Data names this step writes: ``outputs`` plus output/destination/export."""
        names = list(self.outputs)
        for field in self.PRODUCING:
            value = getattr(self, field)
            if isinstance(value, str) and self._is_data_name(field, value):
                names.append(value)
        return list(dict.fromkeys(names))

    def consumes(self) -> set[str]:
        """Data names this step reads: ``inputs`` plus every ``${{data.X}}`` it does not write."""
        produced = set(self.produces())
        names = set(self.inputs)
        for _, text in self.string_fields():
            names.update(n for ns, n in find_references(text) if ns == "data" and n not in produced)
        return names

    def parameter_refs(self) -> set[str]:
        """Pipeline parameters this step references in any templated field."""
        return {
            name
            for _, text in self.string_fields()
            for ns, name in find_references(text)
            if ns == "parameters"
        }

    def string_fields(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """``(field path, text)`` of every string where ``${{...}}`` is substituted."""
        for name in (*self.TEMPLATED, "environment"):
            value = getattr(self, name)
            if name == "environment":
                for key, text in value.variables.items():
                    yield ("environment", "variables", key), text
            else:
                yield from _strings((name,), value)

    def map_strings(self, func: Callable[[str], str]) -> Self:
        """A copy with ``func`` applied to every templated string."""
        update: dict[str, Any] = {name: _map(getattr(self, name), func) for name in self.TEMPLATED}
        env = self.environment
        update["environment"] = env.model_copy(
            update={"variables": {k: func(v) for k, v in env.variables.items()}}
        )
        return self.model_copy(update=update)

    def substituted(self, values: Mapping[str, Mapping[str, str]]) -> Self:
        """A copy with every reference replaced (``values`` as for templating.substitute)."""
        return self.map_strings(lambda text: substitute(text, values))

    def partially_substituted(self, values: Mapping[str, Mapping[str, str]]) -> Self:
        """A copy with only the namespaces in ``values`` replaced (for reuse fingerprints)."""
        return self.map_strings(lambda text: partially_substitute(text, values))

    def file_path(self, field: str) -> Path:
        """The absolute path of a file field (``script``, ``notebook``, ...)."""
        name: str = getattr(self, field)
        return self.source_directory / name

    def _is_data_name(self, field: str, value: str) -> bool:
        return True


def _strings(
    path: tuple[str | int, ...], value: Any
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings((*path, i), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings((*path, key), item)


def _map(value: Any, func: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return func(value)
    if isinstance(value, list):
        return [_map(v, func) for v in value]
    if isinstance(value, dict):
        return {k: _map(v, func) for k, v in value.items()}
    return value


class PythonScriptStep(StepBase):
    """PythonScriptStep: ``[python, script, *arguments]``."""

    TEMPLATED: ClassVar[tuple[str, ...]] = ("arguments",)
    FILES: ClassVar[tuple[str, ...]] = ("script",)

    type: Literal["python_script"]
    script: str
    arguments: StrList = Field(default_factory=list)

    @property
    def script_path(self) -> Path:
        return self.file_path("script")


class DataTransferStep(StepBase):
    """DataTransferStep: copies between datastores (``datastore://NAME/path`` or a data name)."""

    TEMPLATED: ClassVar[tuple[str, ...]] = ("source", "destination")
    PRODUCING: ClassVar[tuple[str, ...]] = ("destination",)

    type: Literal["data_transfer"]
    source: str
    destination: str
    mode: Literal["copy", "sync"] = "copy"
    patterns: StrList = Field(default_factory=lambda: ["*"])

    def consumes(self) -> set[str]:
        names = super().consumes()
        if is_data_name(self.source):
            names.add(self.source)
        return names

    def _is_data_name(self, field: str, value: str) -> bool:
        return is_data_name(value)


def _parameter_reference(text: str) -> bool:
    """True when ``text`` is one ``${{parameters.NAME}}`` and nothing else."""
    refs = scan(text.strip())
    return (
        len(refs) == 1
        and refs[0].namespace == "parameters"
        and (refs[0].start, refs[0].end) == (0, len(text.strip()))
    )


def _number_or_parameter(minimum: int) -> AfterValidator:
    """A parallel_run setting: a number of at least ``minimum``, or a ``${{parameters.NAME}}``
    whose value the run gives (checked when the step starts)."""

    def check(value: float | str) -> float | str:
        if isinstance(value, str):
            if not _parameter_reference(value):
                raise ValueError(f"expected a number or a ${{{{parameters.NAME}}}}, got {value!r}")
        elif value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return AfterValidator(check)


def _duration_or_parameter(value: Any) -> Any:
    if isinstance(value, str) and "${{" in value:
        return value
    return _duration(value)


_SIZE = re.compile(r"\d+\s*([kKmMgG][bB])?")


def _mini_batch_size(value: int | str | None) -> int | str | None:
    if isinstance(value, str) and not (
        _SIZE.fullmatch(value.strip()) or _parameter_reference(value)
    ):
        raise ValueError(
            f"expected a number, a size such as 1MB, or a ${{{{parameters.NAME}}}}; got {value!r}"
        )
    if isinstance(value, int) and value < 1:
        raise ValueError("must be at least 1")
    return value


CountSetting = Annotated[int | str, _number_or_parameter(1)]
#: Keys of a partition_format: ``{name}`` or ``{name:yyyy/MM/dd}``.
PARTITION_KEY = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ -]*)(?::[^}]*)?\}")
COLUMN_TYPES = ("string", "int", "float", "bool", "datetime")


class TabularInput(Model):
    """How a parallel_run input is read as rows (Azure's TabularDataset): ``run(mini_batch)``
    then gets a pandas DataFrame, and ``mini_batch_size`` is a size in bytes (``1MB``)."""

    format: Literal["delimited", "parquet"] = "delimited"
    separator: str = Field(default=",", min_length=1)
    header: bool = True
    encoding: Literal[
        "utf8", "utf8bom", "iso88591", "latin1", "ascii", "utf16", "utf32", "windows1252"
    ] = "utf8"
    infer_column_types: bool = True
    # column -> string | int | float | bool | datetime | datetime:<strftime format>
    set_column_types: dict[str, str] = Field(default_factory=dict)
    include_path: bool = False
    support_multi_line: bool = False
    empty_as_string: bool = False

    @field_validator("set_column_types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for column, kind in value.items():
            if kind.partition(":")[0] not in COLUMN_TYPES:
                raise ValueError(
                    f"column {column!r}: unknown type {kind!r} (known: {', '.join(COLUMN_TYPES)}, "
                    "datetime:<format>)"
                )
        return value


class ParallelRunStep(StepBase):
    """ParallelRunStep: an entry script's ``init()`` and ``run(mini_batch)`` over files, or over
    rows when ``tabular`` is given."""

    TEMPLATED: ClassVar[tuple[str, ...]] = (
        "input",
        "arguments",
        "mini_batch_size",
        "error_threshold",
        "process_count_per_node",
        "node_count",
        "run_invocation_timeout",
        "run_max_try",
    )
    PRODUCING: ClassVar[tuple[str, ...]] = ("output",)
    FILES: ClassVar[tuple[str, ...]] = ("entry_script",)

    type: Literal["parallel_run"]
    entry_script: str
    input: str
    output: str | None = None
    # Files per mini-batch (default 10); with ``tabular``, bytes or a size (default 1MB).
    mini_batch_size: Annotated[int | str | None, AfterValidator(_mini_batch_size)] = None
    error_threshold: Annotated[int | str, _number_or_parameter(-1)] = -1
    output_action: Literal["append_row", "summary_only"] = "append_row"
    append_row_file_name: str = "parallel_run_step.txt"
    process_count_per_node: CountSetting = Field(default_factory=lambda: os.cpu_count() or 1)
    node_count: CountSetting = 1
    run_invocation_timeout: Annotated[
        float | str, BeforeValidator(_duration_or_parameter), _number_or_parameter(0)
    ] = 60.0
    run_max_try: CountSetting = 3
    arguments: StrList = Field(default_factory=list)
    tabular: TabularInput | None = None
    # Values taken from each file's path, e.g. "{store}/{brand}/*.csv" (Azure's partition_format).
    partition_format: str | None = None
    # One mini-batch per combination of these keys' values (keys of partition_format).
    partition_keys: StrList = Field(default_factory=list)

    @model_validator(mode="after")
    def _batches_make_sense(self) -> Self:
        size = self.mini_batch_size
        if (
            self.tabular is None
            and isinstance(size, str)
            and not _parameter_reference(size)
            and not size.strip().isdigit()
        ):
            raise ValueError(
                f"mini_batch_size {size!r} is a size, for tabular inputs; for files give a "
                "number of files (or add tabular: to read the input as rows)"
            )
        if self.partition_keys:
            if size is not None:
                raise ValueError("give either partition_keys or mini_batch_size, not both")
            keys = PARTITION_KEY.findall(self.partition_format or "")
            missing = [k for k in self.partition_keys if k not in keys]
            if missing:
                raise ValueError(
                    f"partition_keys {missing} are not keys of partition_format "
                    f"{self.partition_format!r}"
                    + (f" (its keys: {', '.join(keys)})" if keys else "")
                )
        return self

    @property
    def entry_script_path(self) -> Path:
        return self.file_path("entry_script")


class CommandStep(StepBase):
    """An argv command (a JAR, spark-submit, R): the DatabricksStep counterpart."""

    TEMPLATED: ClassVar[tuple[str, ...]] = ("command",)

    type: Literal["command"]
    command: Annotated[StrList, Field(min_length=1)]


class NotebookStep(StepBase):
    """A parameterised Jupyter notebook; the executed notebook is kept as an output."""

    TEMPLATED: ClassVar[tuple[str, ...]] = ("parameters",)
    FILES: ClassVar[tuple[str, ...]] = ("notebook",)

    type: Literal["notebook"]
    notebook: str
    parameters: dict[str, Scalar] = Field(default_factory=dict)

    @property
    def notebook_path(self) -> Path:
        return self.file_path("notebook")


class SqlStep(StepBase):
    """A SQL script against a SQLAlchemy URL (the AdlaStep counterpart); ``export`` receives the
    last result set as CSV."""

    TEMPLATED: ClassVar[tuple[str, ...]] = ("url",)
    PRODUCING: ClassVar[tuple[str, ...]] = ("export",)
    FILES: ClassVar[tuple[str, ...]] = ("script",)

    type: Literal["sql"]
    url: str
    script: str
    export: str | None = None
    # What a SQL script reads lives in the user's database, which no fingerprint can see: reusing
    # an earlier result would silently hide new rows. Opt in with allow_reuse: true.
    allow_reuse: bool = False

    @property
    def script_path(self) -> Path:
        return self.file_path("script")


Step = Annotated[
    PythonScriptStep | DataTransferStep | ParallelRunStep | CommandStep | NotebookStep | SqlStep,
    Field(discriminator="type"),
]

STEP_TYPES: dict[str, type[Step]] = {
    "python_script": PythonScriptStep,
    "data_transfer": DataTransferStep,
    "parallel_run": ParallelRunStep,
    "command": CommandStep,
    "notebook": NotebookStep,
    "sql": SqlStep,
}


def is_data_name(value: str) -> bool:
    """A data_transfer source/destination that names PipelineData rather than a location."""
    return "://" not in value and "${{" not in value and "/" not in value
