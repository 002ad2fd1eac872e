"""Azure ML's ``Datastore.upload``, ``upload_files``, ``download`` and
``Dataset.File.upload_directory`` on pipesched, as a notebook calls them: on an embedded workspace
(copies within this machine) and through a real daemon (``Workspace(url=, token=)``, the files
going over ``/api/v1/datastores/{name}/files/`` on 127.0.0.1). Both datastores are folders on this
machine, so the tests read what landed there directly. The REST paths are also spoken to with
plain HTTP: a file that is there (409), a path that leads out (422), a body over
``api.max_upload_bytes`` (413, nothing left behind), and the daemon's memory while 100 MB
arrive."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scheduler.core.errors import PipeschedError
from scheduler.sdk import DataPath, DataReference, Dataset, FileDataset, Workspace
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

TIMEOUT = 30
UPLOAD_CAP = 110 * 1024 * 1024  # the remote daemon's api.max_upload_bytes
HUNDRED_MB = 100 * 1000 * 1000

ODD_NAMES = [
    os.fsdecode(b"caf\xe9-latin1.csv"),  # a byte that is not UTF-8
    "line\nbreak.txt",
    "back\\slash \\x41.txt",  # looks like an escape: must stay itself
    "per%cent #hash ?query&amp.txt",
    "日本語 データ.txt",
    "-leading dash",
    " leading space.txt",
    "ctl\x01\x7f.bin",
]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace]:
    project = make_project(tmp_path_factory.mktemp("transfer-embedded"))
    return project, Workspace(config=project.config_path)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str, str, int]]:
    """A real daemon (its project, API URL, a token and its pid) whose uploads are capped at
    ``UPLOAD_CAP``."""
    project = make_project(
        tmp_path_factory.mktemp("transfer-remote"),
        api={"host": "127.0.0.1", "port": 0, "max_upload_bytes": UPLOAD_CAP},
    )
    process = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: process.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "transfer")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        health = requests.get(f"{listening['url']}/healthz", timeout=TIMEOUT).json()
        yield project, listening["url"], token, health["pid"]
    finally:
        process.close()


@pytest.fixture(scope="module")
def remote(daemon) -> tuple[Project, Workspace]:
    project, url, token, _ = daemon
    return project, Workspace(url=url, token=token)


@pytest.fixture(params=["embedded", "remote"])
def workspace(request: pytest.FixtureRequest) -> tuple[Project, Workspace]:
    return request.getfixturevalue(request.param)


@pytest.fixture
def folder(request: pytest.FixtureRequest) -> str:
    """A datastore folder of this test's own: the workspaces are shared by the module."""
    return f"{request.node.originalname}-{request.node.callspec.params['workspace']}"


@pytest.fixture
def http(daemon) -> Iterator[tuple[requests.Session, str]]:
    _, url, token, _ = daemon
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        yield session, f"{url}/api/v1/datastores/default/files"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: its path from ``root`` (``os.fsdecode`` text) → its bytes."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def make_source(root: Path) -> dict[str, bytes]:
    """A notebook's local data folder: nested files and names of every kind."""
    files = {
        "train.csv": b"a,b\n1,2\n",
        "nested/deeper/still/weights.bin": os.urandom(300_000),
        "nested/empty.txt": b"",
        **{f"odd/{name}": name.encode(errors="surrogateescape") for name in ODD_NAMES},
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


# -- both workspaces ------------------------------------------------------------------------------


def test_a_folder_round_trips_with_nested_files_and_odd_names(workspace, folder, tmp_path, capsys):
    project, ws = workspace
    store = ws.get_default_datastore()
    files = make_source(tmp_path / "data")

    reference = store.upload(src_dir=str(tmp_path / "data"), target_path=folder, overwrite=True)

    assert isinstance(reference, DataReference)
    assert (reference.datastore, reference.path_on_datastore) == (store, folder)
    assert tree(project.datastore / folder) == files
    shown = capsys.readouterr().out
    assert f"Uploading an estimated of {len(files)} files" in shown
    assert f"Uploaded {len(files)} files" in shown

    count = store.download(target_path=str(tmp_path / "back"), prefix=folder, show_progress=False)
    assert count == len(files)
    assert tree(tmp_path / "back" / folder) == files  # Azure keeps the path from the root


def test_upload_files_keeps_paths_from_the_common_folder(workspace, folder, tmp_path):
    project, ws = workspace
    store = ws.get_default_datastore()
    make_source(tmp_path / "local")
    picked = [tmp_path / "local" / "train.csv", tmp_path / "local" / "nested" / "empty.txt"]

    store.upload_files([str(p) for p in picked], target_path=folder, show_progress=False)
    assert set(tree(project.datastore / folder)) == {"train.csv", "nested/empty.txt"}

    store.upload_files(
        [str(picked[1])], relative_root=str(tmp_path), target_path=folder, show_progress=False
    )
    assert (project.datastore / folder / "local" / "nested" / "empty.txt").is_file()

    with pytest.raises(PipeschedError, match="is not part of the file_path"):
        store.upload_files([str(picked[0])], relative_root=str(tmp_path / "elsewhere"))


def test_a_file_that_is_there_is_skipped_unless_overwrite(workspace, folder, tmp_path, capsys):
    project, ws = workspace
    store = ws.get_default_datastore()
    source = tmp_path / "results.csv"
    source.write_text("first")
    store.upload_files([str(source)], target_path=folder)
    source.write_text("second")
    capsys.readouterr()

    store.upload_files([str(source)], target_path=folder)  # Azure's default: overwrite=False
    assert (project.datastore / folder / "results.csv").read_text() == "first"
    assert f"Target already exists. Skipping upload for {folder}/results.csv" in (
        capsys.readouterr().out
    )

    store.upload_files([str(source)], target_path=folder, overwrite=True)
    assert (project.datastore / folder / "results.csv").read_text() == "second"

    local = tmp_path / "back" / folder / "results.csv"
    local.parent.mkdir(parents=True)
    local.write_text("mine")
    assert store.download(str(tmp_path / "back"), prefix=folder, show_progress=False) == 0
    assert local.read_text() == "mine"
    assert store.download(str(tmp_path / "back"), prefix=folder, overwrite=True) == 1
    assert local.read_text() == "second"


def test_a_path_that_leads_out_is_refused_and_nothing_lands_outside(workspace, folder, tmp_path):
    project, ws = workspace
    store = ws.get_default_datastore()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep out")
    project.datastore.mkdir(parents=True, exist_ok=True)
    link = project.datastore / f"{folder}-link"
    link.symlink_to(outside)

    with pytest.raises(PipeschedError, match=r"leads out of its folder through '\.\.'"):
        store.upload(str(tmp_path / "data"), target_path=f"../{outside.name}")
    with pytest.raises(PipeschedError, match="leads outside datastore 'default' through a symlink"):
        store.upload(str(tmp_path / "data"), target_path=link.name, show_progress=False)
    assert sorted(os.listdir(outside)) == ["secret.txt"]

    with pytest.raises(PipeschedError, match="leads outside datastore 'default'"):
        store.download(str(tmp_path / "back"), prefix=f"{link.name}/")
    assert not (tmp_path / "back" / link.name).exists()


def test_links_that_stay_inside_are_followed(workspace, folder, tmp_path):
    project, ws = workspace
    store = ws.get_default_datastore()
    real = project.datastore / folder / "2024-06"
    real.mkdir(parents=True)
    (project.datastore / folder / "latest").symlink_to("2024-06")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "day.csv").write_text("d")

    store.upload(str(tmp_path / "data"), target_path=f"{folder}/latest", show_progress=False)
    assert (real / "day.csv").read_text() == "d"
    count = store.download(str(tmp_path / "back"), prefix=f"{folder}/latest/", show_progress=False)
    assert count == 1
    assert (tmp_path / "back" / folder / "latest" / "day.csv").read_text() == "d"


def test_download_takes_what_starts_with_the_prefix(workspace, folder, tmp_path):
    project, ws = workspace
    store = ws.get_default_datastore()
    for relative in ["train.csv", "train/part-1.csv", "train2/part-1.csv", "test.csv"]:
        path = project.datastore / folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(relative)

    count = store.download(str(tmp_path / "a"), prefix=f"{folder}/train", show_progress=False)
    assert count == 3
    assert set(tree(tmp_path / "a" / folder)) == {
        "train.csv",
        "train/part-1.csv",
        "train2/part-1.csv",
    }
    assert store.download(str(tmp_path / "b"), prefix=f"{folder}/train/", show_progress=False) == 1
    assert store.download(str(tmp_path / "c"), prefix=f"{folder}/nothing") == 0


def test_download_of_everything_leaves_out_pipescheds_own_folder(workspace, tmp_path):
    project, ws = workspace
    internal = project.datastore / ".pipesched" / "outputs" / "run" / "step" / "model.pkl"
    internal.parent.mkdir(parents=True, exist_ok=True)
    internal.write_text("run output")
    ws.get_default_datastore().download(str(tmp_path / "all"), show_progress=False)
    assert (tmp_path / "all").is_dir()
    assert not (tmp_path / "all" / ".pipesched").exists()


def test_uploaded_files_are_private(workspace, folder, tmp_path):
    project, ws = workspace
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "x.csv").write_text("x")
    os.chmod(tmp_path / "data" / "sub" / "x.csv", 0o644)
    old = os.umask(0o022)  # the embedded copy runs in this process: its umask is the usual one
    try:
        ws.get_default_datastore().upload(str(tmp_path / "data"), folder, show_progress=False)
    finally:
        os.umask(old)
    modes = {
        path.relative_to(project.datastore / folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [project.datastore / folder, *(project.datastore / folder).rglob("*")]
    }
    assert modes == {".": 0o700, "sub": 0o700, "sub/x.csv": 0o600}


def test_upload_directory_returns_the_file_dataset_of_the_folder(workspace, folder, tmp_path):
    project, ws = workspace
    store = ws.get_default_datastore()
    make_source(tmp_path / "data")

    dataset = Dataset.File.upload_directory(
        src_dir=str(tmp_path / "data"), target=(store, folder), pattern="*.csv", show_progress=False
    )
    assert isinstance(dataset, FileDataset)
    assert dataset._datastore_uri() == f"datastore://default/{folder}"
    assert set(tree(project.datastore / folder)) == {"train.csv", f"odd/{ODD_NAMES[0]}"}

    again = Dataset.File.upload_directory(
        str(tmp_path / "data"), DataPath(store, f"{folder}-all"), show_progress=False
    )
    assert again._datastore_uri() == f"datastore://default/{folder}-all"
    assert len(tree(project.datastore / f"{folder}-all")) == 3 + len(ODD_NAMES)


def test_upload_directory_needs_a_datastore_of_a_workspace(tmp_path):
    with pytest.raises(PipeschedError, match=r"target=\(ws\.get_default_datastore\(\), 'folder'\)"):
        Dataset.File.upload_directory(str(tmp_path), ("default", "folder"))


# -- through the daemon's REST API ----------------------------------------------------------------


def test_a_put_over_a_file_that_is_there_is_409_without_overwrite(daemon, http):
    project = daemon[0]
    session, files = http
    first = session.put(f"{files}/rest/report.txt", data=b"one", timeout=TIMEOUT)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "datastore": "default",
        "path": "rest/report.txt",
        "size": 3,
        "replaced": False,
    }

    again = session.put(f"{files}/rest/report.txt", data=b"two", timeout=TIMEOUT)
    assert again.status_code == 409
    assert "exists" in again.json()["detail"] and "overwrite=true" in again.json()["detail"]
    assert (project.datastore / "rest" / "report.txt").read_bytes() == b"one"

    replaced = session.put(
        f"{files}/rest/report.txt", params={"overwrite": "true"}, data=b"two", timeout=TIMEOUT
    )
    assert replaced.status_code == 200 and replaced.json()["replaced"] is True
    assert session.get(f"{files}/rest/report.txt", timeout=TIMEOUT).content == b"two"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("%2E%2E/escaped.txt", "leads out of its folder through '..'"),
        ("deep/%2E%2E/%2E%2E/escaped.txt", "leads out of its folder through '..'"),
        ("%2Fetc%2Fescaped.txt", "is an absolute path"),
        ("outlink/escaped.txt", "leads outside datastore 'default' through a symlink"),
        ("nul%00byte.txt", "a file name cannot hold a NUL byte"),
        ("caf%E9.txt", "the path is not UTF-8"),
        (".pipesched/models/m/1/model.pkl", "it is read-only"),
        (f"{'n' * 256}.txt", "a name in it is over 255 bytes"),
    ],
)
def test_a_path_leading_out_is_422_with_the_reason(daemon, http, tmp_path, path, reason):
    project = daemon[0]
    session, files = http
    outside = tmp_path / "outside"
    outside.mkdir()
    project.datastore.mkdir(parents=True, exist_ok=True)
    link = project.datastore / "outlink"
    if not link.is_symlink():
        link.symlink_to(outside)
    else:
        link.unlink()
        link.symlink_to(outside)

    response = session.put(f"{files}/{path}", data=b"data", timeout=TIMEOUT)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["path", "path"] and reason in problem["msg"]
    assert list(outside.iterdir()) == []
    assert not (project.root / "escaped.txt").exists()
    assert not (project.state_dir / "escaped.txt").exists()
    assert not Path("/etc/escaped.txt").exists()

    read = session.get(f"{files}/{path}", timeout=TIMEOUT)
    assert read.status_code in (404, 422)


def test_names_go_over_http_as_escaped_text(daemon, http):
    project = daemon[0]
    session, files = http
    name = os.fsdecode(b"raw\xff\\name.txt")
    response = session.put(f"{files}/escaped/raw%5Cxff%5C%5Cname.txt", data=b"x", timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    assert (project.datastore / "escaped" / name).read_bytes() == b"x"

    listing = session.get(f"{files}/escaped/", timeout=TIMEOUT).json()
    (entry,) = listing["entries"]
    assert entry["name"] == "raw\\xff\\\\name.txt"
    assert (entry["type"], entry["size"]) == ("file", 1)
    assert session.get(f"{files}/", timeout=TIMEOUT).json()["path"] == ""
    assert session.get(f"{files}/escaped", timeout=TIMEOUT).status_code == 409  # a folder


def test_a_request_without_a_token_is_401(daemon):
    url = daemon[1]
    response = requests.put(f"{url}/api/v1/datastores/default/files/x.txt", data=b"x", timeout=30)
    assert response.status_code == 401
    assert requests.get(f"{url}/api/v1/datastores/default/files/", timeout=30).status_code == 401


def test_an_unknown_datastore_is_404(http):
    session, files = http
    response = session.put(files.replace("/default/", "/nowhere/") + "/x", data=b"x", timeout=30)
    assert response.status_code == 404
    assert "no datastore 'nowhere'" in response.json()["detail"]


def _leftovers(project: Project) -> list[str]:
    """Anything under the datastore that an upload left: temporary files, new folders."""
    return sorted(
        p.relative_to(project.datastore).as_posix()
        for p in project.datastore.rglob("*")
        if p.name.startswith(".pipesched-upload-") or "over-the-cap" in p.as_posix()
    )


def test_an_upload_over_the_cap_is_413_and_leaves_nothing(daemon, http, remote, tmp_path):
    project = daemon[0]
    session, files = http
    _, ws = remote

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        block = b"\1" * (1024 * 1024)
        for _ in range(UPLOAD_CAP // len(block) + 2):
            yield block

    response = session.put(f"{files}/over-the-cap/deep/big.bin", data=chunks(), timeout=TIMEOUT)
    assert response.status_code == 413, response.text
    assert _leftovers(project) == []

    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(UPLOAD_CAP + 1)  # sparse: nothing to write, all to send
    store = ws.get_default_datastore()
    with pytest.raises(PipeschedError, match=f"larger than {UPLOAD_CAP} bytes"):
        store.upload_files([str(big)], target_path="over-the-cap", show_progress=False)
    assert _leftovers(project) == []


def test_a_large_file_that_is_there_is_skipped_when_the_daemon_answers_early(
    daemon, remote, tmp_path, capsys
):
    """The daemon refuses (409) before reading the body: the notebook reads that answer, as
    Azure skips a file that exists, instead of a broken connection."""
    project = daemon[0]
    _, ws = remote
    source = tmp_path / "large.bin"
    with open(source, "wb") as handle:
        handle.truncate(40 * 1024 * 1024)
    store = ws.get_default_datastore()
    store.upload_files([str(source)], target_path="large", show_progress=False)
    placed = project.datastore / "large" / "large.bin"
    placed.write_bytes(b"already here")
    capsys.readouterr()

    store.upload_files([str(source)], target_path="large")
    assert "Target already exists. Skipping upload for large/large.bin" in capsys.readouterr().out
    assert placed.read_bytes() == b"already here"


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_the_daemons_memory_stays_flat_while_100_mb_arrive(daemon, remote, tmp_path):
    project, _, _, pid = daemon
    _, ws = remote
    source = tmp_path / "hundred.bin"
    with open(source, "wb") as handle:
        handle.write(os.urandom(1024 * 1024))
        handle.truncate(HUNDRED_MB)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak RSS starts again from now
    before = _peak_rss_kib(pid)

    ws.get_default_datastore().upload_files(
        [str(source)], target_path="memory", overwrite=True, show_progress=False
    )

    grown_mib = (_peak_rss_kib(pid) - before) / 1024
    print(f"daemon peak RSS grew by {grown_mib:.1f} MiB during a 100 MB upload")
    assert (project.datastore / "memory" / "hundred.bin").stat().st_size == HUNDRED_MB
    assert grown_mib < 32


def test_the_openapi_document_lists_every_answer_of_the_file_paths(daemon):
    document = requests.get(f"{daemon[1]}/openapi.json", timeout=TIMEOUT).json()
    operations = document["paths"]["/api/v1/datastores/{name}/files/{path}"]
    expected = {"200", "201", "400", "401", "404", "409", "413", "422"}
    assert set(operations["put"]["responses"]) >= expected
    assert set(operations["get"]["responses"]) >= {"200", "401", "404", "409", "422"}
    assert "application/octet-stream" in operations["put"]["requestBody"]["content"]


def test_uploads_in_parallel_to_one_new_file_leave_one_whole_file(daemon, http):
    """Two writers racing for one new path: one gets 201, the other 409; the file is whole."""
    project = daemon[0]
    session, files = http
    bodies = [b"a" * 2_000_000, b"b" * 2_000_000]
    statuses: list[int] = []

    def put(body: bytes) -> None:
        with requests.Session() as own:
            own.headers.update(session.headers)
            statuses.append(own.put(f"{files}/race/one.bin", data=body, timeout=30).status_code)

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert (project.datastore / "race" / "one.bin").read_bytes() in bodies
