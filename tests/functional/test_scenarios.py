"""The founding scenarios (issue 13), each deployed from its directory under examples/ onto a
real `ondo up` and driven the way its README says: httpx for webhooks and the API, PostgreSQL
for database changes, ftplib for uploads, an HTTP server capturing Apprise `json://` posts."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import hmac
import io
import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, free_port, wait_for
from tests.http_capture import CaptureServer, capture
from tests.services import require_postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = 86400.0


@pytest.fixture
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningPlatform]:
    """`ondo up --app examples/NAME` (NAME: the test's parameter) on a manual clock, so that a
    test decides when events are dispatched and 30 days pass in no time."""
    app = EXAMPLES / request.param
    env = {"ONDO_CLOCK": "manual"}
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as running:
        yield running


def advance(api: httpx.Client, seconds: float) -> None:
    """Dispatch what was sent, then move the manual clock."""
    api.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


def outcomes(api: httpx.Client, event_id: str) -> list[str]:
    advance(api, 0)
    trace = api.get(f"/v1/trace/{event_id}").json()
    return [f"{d['rule']}:{d['outcome']}" for d in trace["decisions"]]


def finished(api: httpx.Client, function: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/functions/{function}/invocations")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["invocations"]
    return [r for r in found if r["status"] not in ("queued", "running")]


# 6. insurance ---------------------------------------------------------------------------------


def claim(platform: RunningPlatform, api: httpx.Client, person: str, n: int) -> str:
    """The claims system files claim `n` about `person` through the http source."""
    url = f"{platform.url}/http/default/claims/claims/{person}"
    sent = api.post(url, json={"amount": 100 + n}, headers={"X-Claim-Id": f"{person}-{n}"})
    assert sent.status_code == 202, sent.text
    event_id: str = sent.json()["id"]
    return event_id


@pytest.mark.parametrize("scenario", ["insurance"], indirect=True)
def test_insurance_ten_claims_about_one_person_in_30_days_revoke_her_cover_once(
    scenario: RunningPlatform,
) -> None:
    insurer = scenario
    with insurer.client() as api:
        # alice: nine claims two days apart; bob's claims interleaved do not count for her
        for n in range(1, 10):
            last = claim(insurer, api, "alice", n)
            bob = claim(insurer, api, "bob", n)
            advance(api, 2 * DAY)
        assert outcomes(api, last) == ["too-many-claims:counted"]
        assert outcomes(api, bob) == ["too-many-claims:counted"]
        assert finished(api, "revoke-cover") == []  # nine claims each: no revocation
        # a claim sent twice (the same X-Claim-Id) is one claim
        again = claim(insurer, api, "alice", 9)
        assert outcomes(api, again) == ["too-many-claims:counted"]
        assert finished(api, "revoke-cover") == []
        # her tenth claim, on day 18: the cover is revoked, hers only
        tenth = claim(insurer, api, "alice", 10)
        assert outcomes(api, tenth) == ["too-many-claims:fired"]
        revoked = wait_for(lambda: finished(api, "revoke-cover"))
        assert [r["status"] for r in revoked] == ["succeeded"]
        assert revoked[0]["result"]["revoked"] == "alice"
        assert revoked[0]["result"]["last_claim"] == tenth
        claimed = api.get(f"/v1/events/{tenth}").json()["event"]
        assert claimed["subject"] == "alice"  # the route's subject: "{person}"
        # the count starts anew: an eleventh claim does not revoke it a second time
        assert outcomes(api, claim(insurer, api, "alice", 11)) == ["too-many-claims:counted"]
        # bob's tenth claim comes 13 days later: his first ones are now over 30 days old
        advance(api, 13 * DAY)
        assert outcomes(api, claim(insurer, api, "bob", 10)) == ["too-many-claims:counted"]
        advance(api, 0)
        assert [r["result"]["revoked"] for r in finished(api, "revoke-cover")] == ["alice"]


# 5. login -------------------------------------------------------------------------------------

IDP_SECRET = b"example-idp-secret"  # examples/login/ondo.yaml


def idp_webhook(
    platform: RunningPlatform, login: dict[str, Any], event_id: str, secret: bytes = IDP_SECRET
) -> httpx.Response:
    """What the identity provider sends: a JSON body signed with the shared secret."""
    body = json.dumps(login).encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signature,
        "X-Event-Id": event_id,
    }
    url = f"{platform.url}/http/default/idp/webhooks/login"
    return httpx.post(url, content=body, headers=headers)


@pytest.mark.parametrize("scenario", ["login"], indirect=True)
def test_login_bob_signing_in_at_the_identity_provider_opens_his_mailbox(
    scenario: RunningPlatform,
) -> None:
    bob = {"type": "login", "outcome": "success", "user": "bob", "ip": "192.0.2.7"}
    with scenario.client() as api:
        # a webhook not signed with the shared secret is refused and opens nothing
        forged = idp_webhook(scenario, bob, "evt-forged", secret=b"guessed")
        assert forged.status_code == 401, forged.text
        # a webhook whose body names no user cannot say whom the event is about
        nobody = idp_webhook(scenario, {"type": "login", "outcome": "success"}, "evt-0")
        assert nobody.status_code == 400, nobody.text
        assert "no user field" in nobody.json()["message"]
        # a failed sign-in is an event, but opens nothing
        failed = {"type": "login", "outcome": "failure", "user": "bob"}
        refused = idp_webhook(scenario, failed, "evt-1")
        assert refused.status_code == 202, refused.text
        assert outcomes(api, "evt-1") == []
        assert finished(api, "open-mailbox") == []
        # Bob signs in: his mailbox is opened
        signed_in = idp_webhook(scenario, bob, "evt-2")
        assert signed_in.status_code == 202 and signed_in.json() == {
            "id": "evt-2",
            "duplicate": False,
        }
        assert outcomes(api, "evt-2") == ["open-mailbox-on-login:fired"]
        opened = wait_for(lambda: finished(api, "open-mailbox"))
        assert [r["status"] for r in opened] == ["succeeded"], opened
        assert opened[0]["result"] == {
            "mailbox": "bob@mail.example.org",
            "user": "bob",
            "folders": ["INBOX", "Sent", "Drafts", "Trash"],
            "login_event": "evt-2",
        }
        event = api.get("/v1/events/evt-2").json()["event"]
        assert event["type"] == "auth.login" and event["source"] == "idp"
        assert event["subject"] == "bob"  # the route's subject: "{body.user}"
        assert event["data"]["body"] == bob
        # the provider retrying the same delivery is a duplicate: no second mailbox
        again = idp_webhook(scenario, bob, "evt-2")
        assert again.status_code == 202 and again.json()["duplicate"] is True
        advance(api, 0)
        assert len(finished(api, "open-mailbox")) == 1


# 2. exams -------------------------------------------------------------------------------------


@pytest.fixture
def office() -> Iterator[CaptureServer]:
    """The exams office's inbox: an HTTP server capturing Apprise `json://` posts."""
    yield from capture()


def with_changes(example: str, root: Path, change: dict[str, dict[str, Any]]) -> Path:
    """A copy of examples/EXAMPLE whose ondo.yaml sections get these settings merged in (the
    database's schema, the contacts' URLs: what a reader edits for their own setup)."""
    app = root / example
    shutil.copytree(EXAMPLES / example, app)
    manifest = yaml.safe_load((app / "ondo.yaml").read_text())
    for path, settings in change.items():
        section = manifest
        for key in path.split("/"):
            section = section[key]
        section.update(settings)
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return app


def sql(url: str, *statements: str) -> None:
    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def school(tmp_path: Path, office: CaptureServer) -> Iterator[tuple[RunningPlatform, str, str]]:
    """examples/exams on a `marks` table in a schema of its own in the `test` database."""
    url = require_postgres()
    schema = f"school_{uuid.uuid4().hex[:10]}"
    sql(
        url,
        f"CREATE SCHEMA {schema}",
        f"""CREATE TABLE {schema}.marks (id serial PRIMARY KEY, student text NOT NULL,
            teacher text NOT NULL, course text NOT NULL, mark int, comment text)""",
        f"""INSERT INTO {schema}.marks (student, teacher, course, mark) VALUES
            ('ada', 'alice', 'maths', 6), ('grace', 'alice', 'maths', 7),
            ('linus', 'trent', 'physics', 5)""",
    )
    app = with_changes(
        "exams",
        tmp_path,
        {
            "sources/school": {"url": url, "schema": schema, "poll": "1s"},
            "contacts/exams-office": {"inbox": f"json://127.0.0.1:{office.port}/exams-office"},
        },
    )
    try:
        with RunningPlatform(tmp_path / "data", apps=[app]) as running:
            with running.client() as api:
                wait_for(lambda: api.get("/v1/sources/school").json()["state"] == "connected")
            yield running, url, schema
    finally:
        sql(url, f"DROP SCHEMA {schema} CASCADE")


def test_exams_a_changed_mark_tells_the_exams_office_other_changes_do_not(
    school: tuple[RunningPlatform, str, str], office: CaptureServer
) -> None:
    platform, url, schema = school
    marks = f"{schema}.marks"
    # alice marks ada's exam again, and writes a comment on grace's row (not a mark)
    sql(url, f"UPDATE {marks} SET mark = 9 WHERE student = 'ada'")
    sql(url, f"UPDATE {marks} SET comment = 'well done' WHERE student = 'grace'")
    # the comment and the mark of grace in one statement: the mark counts
    sql(url, f"UPDATE {marks} SET mark = 8, comment = 'better' WHERE student = 'grace'")
    # an update that sets the same mark changes nothing
    sql(url, f"UPDATE {marks} SET mark = 8 WHERE student = 'grace'")
    sql(url, f"UPDATE {marks} SET mark = 4 WHERE student = 'linus'")  # trent's student
    # changes arrive in order: once linus' note is in, every earlier one would be too
    wait_for(lambda: len(office.to("/exams-office")) >= 3)
    notes = [r.json() for r in office.to("/exams-office")]
    assert [(n["title"], n["message"]) for n in notes] == [
        ("Mark changed: ada", "alice changed the maths mark of ada from 6 to 9"),
        ("Mark changed: grace", "alice changed the maths mark of grace from 7 to 8"),
        ("Mark changed: linus", "trent changed the physics mark of linus from 5 to 4"),
    ]
    assert all(b"well done" not in r.body and b"better" not in r.body for r in office.requests)
    with platform.client() as api:
        events = api.get("/v1/events", params={"type": "db.row.updated"}).json()["events"]
    # the comment alone, and the mark set to what it was, were never events
    assert [e["event"]["subject"] for e in events] == ["marks/1", "marks/2", "marks/3"]


# 4. uploads -----------------------------------------------------------------------------------

LAB_PASSWORD = "example-lab-password"  # examples/uploads/ondo.yaml
CSV = b"sample,ph,temperature\nS-1,7.1,20.5\nS-2,6.8,21.0\nS-3,7.4,19.8\n"


def free_ports(count: int) -> list[int]:
    """`count` consecutive ports nobody listens on (the FTP source's passive range)."""
    for base in range(40000 + free_port() % 1000 * 10, 60000, 10):
        ports = list(range(base, base + count))
        if all(_free(port) for port in ports):
            return ports
    raise AssertionError("no free range of ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def lab(tmp_path: Path, office: CaptureServer) -> Iterator[tuple[RunningPlatform, int]]:
    """examples/uploads on free ports, its function allowed to reach them, the lab's inbox the
    capture server."""
    control, *passive = free_ports(5)
    allow = [f"127.0.0.1:{port}" for port in (control, *passive)]
    app = with_changes(
        "uploads",
        tmp_path,
        {
            "sources/uploads": {"port": control, "passive_ports": f"{passive[0]}-{passive[-1]}"},
            "functions/summarise-csv": {"network": {"allow": allow}},
            "functions/summarise-csv/environment": {"FTP_PORT": str(control)},
            "contacts/lab": {"inbox": f"json://127.0.0.1:{office.port}/lab"},
        },
    )
    with RunningPlatform(tmp_path / "data", apps=[app]) as running:
        with running.client() as api:
            wait_for(lambda: api.get("/v1/sources/uploads").json()["state"] == "connected")
        yield running, control


def ftp_session(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=30)
    ftp.login("lab", LAB_PASSWORD)
    return ftp


def test_uploads_a_csv_uploaded_over_ftp_is_summarised_and_the_uploader_told(
    lab: tuple[RunningPlatform, int], office: CaptureServer
) -> None:
    platform, port = lab
    with ftp_session(port) as ftp:
        ftp.storbinary("STOR notes.txt", io.BytesIO(b"not a table"))  # not a CSV: left alone
        ftp.mkd("runs")
        ftp.storbinary("STOR runs/results.csv", io.BytesIO(CSV))
    note = wait_for(lambda: office.to("/lab"))
    assert [(n.json()["title"], n.json()["message"]) for n in note] == [
        (
            "Upload processed: results.csv",
            f"results.csv: 3 rows, sha256 {hashlib.sha256(CSV).hexdigest()};"
            " summary in /runs/results.csv.summary.json",
        )
    ]
    # the summary was written back beside the upload, where the lab can fetch it
    with ftp_session(port) as ftp:
        chunks: list[bytes] = []
        ftp.retrbinary("RETR runs/results.csv.summary.json", chunks.append)
    summary = json.loads(b"".join(chunks))
    assert summary == {
        "file": "results.csv",
        "uploader": "lab",
        "rows": 3,
        "columns": ["sample", "ph", "temperature"],
        "bytes": len(CSV),
        "sha256": hashlib.sha256(CSV).hexdigest(),
        "summary": "/runs/results.csv.summary.json",
    }
    with platform.client() as api:
        runs = finished(api, "summarise-csv")
    assert [r["status"] for r in runs] == ["succeeded"]  # once: not for notes.txt nor the summary
    assert runs[0]["result"] == summary
