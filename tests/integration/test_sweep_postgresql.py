"""invlab sweep across processes on PostgreSQL, as several hosts would share a study: a server
from Debian's ``postgresql`` package on 127.0.0.1 in a temporary folder (as the ``postgres`` user
when run as root: initdb refuses root), stopped at the end; skipped where PostgreSQL is not
installed."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from sweep_workers import pop_concurrently, study_with_a_killed_worker

pytestmark = pytest.mark.integration


def _pg_tool(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture
def postgres_url():
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it)")
    pytest.importorskip("psycopg")
    root = Path(tempfile.mkdtemp(prefix="invlab-pg-"))
    as_pg = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        as_pg + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True
    )
    subprocess.run(
        as_pg
        + [
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        yield url
    finally:
        subprocess.run(as_pg + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_study_survives_a_killed_worker(tmp_path, postgres_url):
    rep = study_with_a_killed_worker(postgres_url, tmp_path)
    assert rep["counts"]["COMPLETE"] == 4



def test_postgresql_workers_never_take_the_same_trial(tmp_path, postgres_url):
    taken = pop_concurrently(postgres_url, tmp_path)
    flat = [t for ids in taken for t in ids]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == 40
