"""`ondo up --tls-cert/--tls-key` serves https; the CLI trusts a self-signed platform with
--cacert / ONDO_CACERT and says what is wrong with unreadable or mismatched files."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.functional.platform import REPO, RunningPlatform, free_port


def _self_signed(directory: Path, name: str = "ondo") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key; (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _up(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "ondo", "--data-dir", str(data_dir), "up"]
    args += ["--port", str(free_port()), *flags]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path / "tls")
    with RunningPlatform(tmp_path / "data", tls=(cert, key)) as p, p.client() as api:
        assert "ondo is up at https://" in p.log()
        assert api.get("/v1/functions").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{p.url}/healthz")  # not in the system's trust store
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(p.url.replace("https://", "http://") + "/healthz")  # no plain http
        listed = p.cli("functions", "list", "--cacert", str(cert))
        assert listed.returncode == 0, listed.stderr
        by_env = subprocess.run(
            [sys.executable, "-m", "ondo", "functions", "list"],
            env={**p.env, "ONDO_TOKEN": p.token, "ONDO_CACERT": str(cert)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert by_env.returncode == 0, by_env.stderr
        untrusted = p.cli("functions", "list")
        assert untrusted.returncode == 1
        assert "pass --cacert FILE (or set ONDO_CACERT)" in untrusted.stderr, untrusted.stderr
        other_cert, _ = _self_signed(tmp_path / "other", "other")
        wrong = p.cli("functions", "list", "--cacert", str(other_cert))
        assert "does not vouch for" in wrong.stderr
        missing = p.cli("functions", "list", "--cacert", str(tmp_path / "nope.pem"))
        assert missing.returncode == 1 and "nope.pem does not exist" in missing.stderr
        not_pem = p.cli("functions", "list", "--cacert", str(key))
        assert not_pem.returncode == 1 and "holds no PEM certificate" in not_pem.stderr


def test_unreadable_or_mismatched_files_stop_the_start(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path / "a", "a")
    _, other_key = _self_signed(tmp_path / "b", "b")
    data = tmp_path / "data"
    mismatched = _up(data, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert mismatched.returncode == 1
    assert "the key is not the certificate's private key" in mismatched.stderr
    missing = _up(data, "--tls-cert", str(tmp_path / "none.crt"), "--tls-key", str(key))
    assert missing.returncode == 1 and "--tls-cert" in missing.stderr
    assert "cannot read it: No such file or directory" in missing.stderr
    swapped = _up(data, "--tls-cert", str(key), "--tls-key", str(cert))
    assert swapped.returncode == 1 and "not a PEM certificate" in swapped.stderr
    alone = _up(data, "--tls-cert", str(cert))
    assert alone.returncode == 1 and "both a certificate and its private key" in alone.stderr
    assert "Traceback" not in mismatched.stderr + missing.stderr + swapped.stderr + alone.stderr
