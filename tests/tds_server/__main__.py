"""``python -m tests.tds_server --port N --data FOLDER``: serve a folder of Parquet files as SQL Server tables."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .engine import Engine
from .server import TdsServer
from .tls import Certificate, generate_certificate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.tds_server", description=__doc__)
    parser.add_argument("--port", type=int, default=14330, help="loopback port to listen on (0: any free port)")
    parser.add_argument(
        "--data", type=Path, required=True, help="folder of <table>.parquet files (and optional <table>.types.json)"
    )
    parser.add_argument("--user", default="sa", help="SQL login name")
    parser.add_argument("--password", default="Hygge-Test-1", help="SQL login password")
    parser.add_argument("--token", default=None, help="accept this Azure AD access token (FEDAUTH) as well")
    parser.add_argument("--no-tls", action="store_true", help="refuse encryption (clients must use Encrypt=no)")
    parser.add_argument("--database", default="hygge", help="database name reported to clients")
    parser.add_argument("--cert", type=Path, default=None, help="PEM certificate to serve (with --key); default: a new one")
    parser.add_argument("--key", type=Path, default=None, help="the PEM private key of --cert")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tds-cert-") as folder:
        if args.no_tls:
            certificate = None
        elif args.cert is not None and args.key is not None:
            certificate = Certificate(args.cert, args.key)
        else:
            certificate = generate_certificate(Path(folder))
        server = TdsServer(
            Engine(args.data, database=args.database),
            port=args.port,
            logins={args.user: args.password},
            certificate=certificate,
            access_token=args.token,
        ).start()
        tables = ", ".join(f"{t.schema}.{t.name}" for t in server.engine.tables.values()) or "none"
        print(f"TDS test server on 127.0.0.1:{server.port} (login {args.user}); tables: {tables}", flush=True)
        if certificate is not None:
            print(
                f"certificate: {certificate.cert_file} (use ServerCertificate=<this file> or TrustServerCertificate=yes)",
                flush=True,
            )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


if __name__ == "__main__":
    main()
