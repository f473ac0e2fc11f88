"""Where the Delta tests land: local disk, S3 (moto in server mode) and Azure Blob (Azurite), all real servers.

Each emulator is a child process on a free 127.0.0.1 port, started once per test
session and stopped (by its own process id) when the session ends. Every test
gets its own bucket or container, so tests never see each other's tables.

``Lake`` is what a test needs from a backend: a table URI for an entity, the
``storage_options`` that reach it, options with a wrong secret, and options
whose endpoint refuses connections.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Azurite's documented development account: public, the same in every Azurite.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
WRONG_AZURE_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
WRONG_S3_SECRET = "wrong-secret-Zq9Xv2Lk"


@dataclass
class Lake:
    """One backend: how to name a table on it and how to reach it."""

    name: str
    root: str  # folder or bucket/container URI under which this test's tables live
    options: dict[str, str] = field(default_factory=dict)
    wrong_options: dict[str, str] = field(default_factory=dict)
    unreachable_options: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def uri(self, entity: str) -> str:
        return f"{self.root.rstrip('/')}/{entity}"

    @property
    def is_local(self) -> bool:
        return "://" not in self.root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}) before listening on {port}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port}")


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start an emulator in its own session, its output into a file (a pipe nobody reads would fill and stall it)."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """Stop one emulator by its own process group (it was started in a new session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def new_bucket(self) -> str:
        import boto3

        name = f"lake-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto in server mode with authentication on: only the IAM key made here is accepted.

    ``INITIAL_NO_AUTH_ACTION_COUNT=3`` lets the three IAM calls that create that key
    through unauthenticated; every request after them is checked.
    """
    pytest.importorskip("moto", reason="S3 tests NOT RUN: install the test extra (moto[server])")
    port = free_port()
    workspace = Path(tempfile.mkdtemp(prefix="hygge-moto-"))
    log = workspace / "moto.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = start(command, log, env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        wait_for_port(port, process, "moto server", log)
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
            region_name="us-east-1",
        )
        iam.create_user(UserName="hygge")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="hygge", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="hygge")["AccessKey"]
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        stop(process)
        shutil.rmtree(workspace, ignore_errors=True)


def azurite_command() -> list[str] | None:
    """Azurite's blob server: on PATH, or in the local folder scripts/install-system-packages.sh may use."""
    found = shutil.which("azurite-blob")
    if found:
        return [found]
    local = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    return [str(local)] if local.exists() else None


@dataclass
class AzureServer:
    endpoint: str

    def new_container(self) -> str:
        from azure.storage.blob import BlobServiceClient

        name = f"lake-{uuid.uuid4().hex[:12]}"
        protocol = self.endpoint.partition(":")[0]
        connection = f"DefaultEndpointsProtocol={protocol};AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        # The OAuth server's certificate is self-signed: the container is made with the account key, not verified.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning, for exactly that
            BlobServiceClient.from_connection_string(connection, connection_verify=protocol == "http").create_container(name)
        return name


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    """Azurite's blob service on a free loopback port, with a throw-away workspace."""
    pytest.importorskip("azure.storage.blob", reason="Azure tests NOT RUN: install the test extra (azure-storage-blob)")
    command = azurite_command()
    if command is None:
        pytest.fail("azurite-blob is not installed: run scripts/install-system-packages.sh (npm install -g azurite)")
    port = free_port()
    workspace = Path(tempfile.mkdtemp(prefix="hygge-azurite-"))
    log = workspace / "azurite.log"
    arguments = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(workspace / "data"),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ]
    process = start([*command, *arguments], log)
    try:
        wait_for_port(port, process, "azurite", log)
        yield AzureServer(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
    finally:
        stop(process)
        shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture(scope="session")
def azure_oauth_server() -> Iterator[AzureServer]:
    """A second Azurite that checks bearer tokens (``--oauth basic``: issuer, audience, expiry; not the signature).

    Azurite accepts OAuth only over HTTPS, so it gets a self-signed certificate made here with openssl.
    """
    pytest.importorskip("azure.storage.blob", reason="Azure tests NOT RUN: install the test extra (azure-storage-blob)")
    command = azurite_command()
    if command is None:
        pytest.fail("azurite-blob is not installed: run scripts/install-system-packages.sh (npm install -g azurite)")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed: the OAuth Azurite needs a certificate (apt-get install openssl)")
    workspace = Path(tempfile.mkdtemp(prefix="hygge-azurite-oauth-"))
    cert, key = workspace / "cert.pem", workspace / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = workspace / "azurite.log"
    arguments = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(workspace / "data"),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        "--oauth",
        "basic",
        "--cert",
        str(cert),
        "--key",
        str(key),
    ]
    process = start([*command, *arguments], log)
    try:
        wait_for_port(port, process, "azurite (oauth)", log)
        yield AzureServer(f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
    finally:
        stop(process)
        shutil.rmtree(workspace, ignore_errors=True)


def fake_entra_token(
    *, tenant: str = "72f988bf-0000-4000-8000-2d7cd011db47", audience: str = "https://storage.azure.com", expires_in: int = 3600
) -> tuple[str, int]:
    """An unsigned JWT shaped like Entra ID's for Azure Storage, and its expiry (epoch seconds).

    Azurite's basic OAuth checks issuer, audience and times, which is what a wrong
    identity or an expired token gets wrong; the signature is not checked.
    """
    import base64

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + expires_in,
        "tid": tenant,
        "oid": str(uuid.uuid4()),
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl", now + expires_in


def azure_oauth_lake(server: AzureServer) -> Lake:
    """No key in the options: the token comes from ``auth:``. The certificate is the test's own, hence not verified."""
    return Lake(
        name="azure-oauth",
        root=f"az://{server.new_container()}/tables",
        options={
            "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
            "AZURE_STORAGE_ENDPOINT": server.endpoint,
            "ALLOW_INVALID_CERTIFICATES": "true",
        },
    )


def s3_lake(server: S3Server) -> Lake:
    bucket = server.new_bucket()
    options = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    return Lake(
        name="s3",
        root=f"s3://{bucket}/tables",
        options=options,
        wrong_options={**options, "AWS_SECRET_ACCESS_KEY": WRONG_S3_SECRET},
        unreachable_options={**options, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
        secrets=[server.secret_key, WRONG_S3_SECRET],
    )


def azure_lake(server: AzureServer) -> Lake:
    container = server.new_container()
    options = {
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_STORAGE_ENDPOINT": server.endpoint,
        "AZURE_ALLOW_HTTP": "true",
    }
    port = free_port()
    return Lake(
        name="azure",
        root=f"az://{container}/tables",
        options=options,
        wrong_options={**options, "AZURE_STORAGE_ACCOUNT_KEY": WRONG_AZURE_KEY},
        unreachable_options={**options, "AZURE_STORAGE_ENDPOINT": f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"},
        secrets=[AZURITE_KEY, WRONG_AZURE_KEY],
    )
