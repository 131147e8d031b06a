"""The masking leak test for exports: every format, made through the exports page by each blinded role that
may export, is read back file by file (binary formats decoded by their own libraries) and holds no arm code,
arm name or arm description; asking for arms is refused to them. The unblinded statistician's export with
arms does hold them, so the check can fail. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Iterator

import pyarrow.parquet as pq
import pyreadstat
import pytest
from fastapi.testclient import TestClient

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial
from trialwright.domain.roles import Role, role_named
from trialwright.exports.registry import FORMATS
from trialwright.protocol import load_protocol
from trialwright.services.simulation import simulate
from trialwright.settings import Settings
from trialwright.web.app import create_app

ARMS = load_protocol(FIRST_PROTOCOL).protocol.arms
READERS = {".dta": pyreadstat.read_dta, ".sav": pyreadstat.read_sav, ".xpt": pyreadstat.read_xport}


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=5)
    yield t
    t.engine.dispose()


@pytest.fixture
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        yield c


def _texts(archive: bytes) -> Iterator[tuple[str, str]]:
    """Each file of an export as text; tables of binary formats decoded by their own libraries."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        for name in z.namelist():
            data = z.read(name)
            suffix = name[name.rfind(".") :]
            if suffix == ".parquet":
                yield name, pq.read_table(io.BytesIO(data)).to_pandas().to_csv()
            elif suffix in READERS:
                with tempfile.TemporaryDirectory() as folder:  # pyreadstat reads files only
                    path = f"{folder}/table{suffix}"
                    with open(path, "wb") as f:
                        f.write(data)
                    frame, meta = READERS[suffix](path)
                yield name, frame.to_csv() + repr(meta.column_labels) + repr(meta.variable_value_labels)
            else:
                yield name, data.decode("utf-8", errors="replace")


def _leaks(text: str) -> list[str]:
    found = [a.name for a in ARMS if a.name in text]
    found += [a.code for a in ARMS if re.search(rf"\b{re.escape(a.code)}\b", text)]
    found += [a.description.strip()[:60] for a in ARMS if a.description.strip()[:60] in text]
    return found


def _export(client: TestClient, fmt: str, with_arms: bool = False):  # type: ignore[no-untyped-def]
    page = client.get("/exports")
    assert page.status_code == 200, page.text
    data = {"format": fmt, "csrf_token": csrf_of(page.text), **({"with_arms": "1"} if with_arms else {})}
    return client.post("/exports", data=data)


@pytest.mark.covers("REG-5")
@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN])
def test_no_export_of_a_blinded_user_names_an_arm(client: TestClient, role: Role) -> None:
    sign_in(client, role)
    for fmt in sorted(FORMATS):
        response = _export(client, fmt)
        assert response.status_code == 200, (fmt, response.text[:500])
        files = list(_texts(response.content))
        assert files, fmt
        for name, text in files:
            assert _leaks(text) == [], (fmt, name)
    refused = _export(client, "csv", with_arms=True)
    assert refused.status_code == 403 and f"with_arms: {role_named(role)} is masked in this trial" in refused.text


def test_the_unblinded_statistician_s_export_with_arms_does_hold_them(client: TestClient) -> None:
    sign_in(client, Role.UNBLINDED_STATISTICIAN)
    response = _export(client, "csv", with_arms=True)
    assert response.status_code == 200
    participants = dict(_texts(response.content))
    table = next(text for name, text in participants.items() if name.endswith("participants.csv"))
    assert _leaks(table)  # the arm codes are there: the scan above would have seen them
