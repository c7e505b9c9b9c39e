"""Invoked by the `summarise` rule with the `object.created` event of a CSV uploaded over FTP.

The function fetches the file over FTP as its uploader (it cannot read ondo's data directory),
counts its rows, checks it is the file that was announced (the event's etag is its MD5), and
writes `NAME.summary.json` back beside it.
"""

import csv
import hashlib
import io
import json
import os
import posixpath
from ftplib import FTP


def handler(event, context):
    upload = event["data"]
    user, _, path = upload["key"].partition("/")  # the key is USER/PATH IN THE HOME
    content = fetch(user, "/" + path)
    if hashlib.md5(content).hexdigest() != upload["etag"]:
        raise RuntimeError(f"{upload['key']} changed since it was uploaded; not summarised")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    header, records = (rows[0], rows[1:]) if rows else ([], [])
    summary = {
        "file": posixpath.basename(path),
        "uploader": upload["uploader"],
        "rows": len(records),
        "columns": header,
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "summary": "/" + path + ".summary.json",
    }
    store(user, summary["summary"], json.dumps(summary, indent=2).encode())
    print(f"{upload['key']}: {summary['rows']} rows, sha256 {summary['sha256']}")
    return summary


def connect(user):
    ftp = FTP()
    ftp.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]), timeout=10)
    ftp.login(user, os.environ["FTP_PASSWORD"])
    return ftp


def fetch(user, path):
    chunks = []
    with connect(user) as ftp:
        ftp.retrbinary(f"RETR {path}", chunks.append)
    return b"".join(chunks)


def store(user, path, content):
    with connect(user) as ftp:
        ftp.storbinary(f"STOR {path}", io.BytesIO(content))
