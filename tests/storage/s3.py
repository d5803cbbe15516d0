"""A real S3-compatible server for the tests: moto's server mode on a free port, started by the tests.

Each test that wants a lake on object storage gets its own bucket (`S3Server.new_bucket`), reached through
the standard AWS variables exactly as a deployment would set them (`environment()`), so the code under test
builds its own client from the environment, as in production. Nothing of kitsync is mocked: moto plays S3.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

ACCESS_KEY = "kitsync-test-access-key"
SECRET_KEY = "kitsync-test-secret-key"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class S3Request:
    """One request the server answered: its method, path and query string."""

    method: str
    path: str
    query: str

    @property
    def is_list(self) -> bool:
        """A ListObjects(V2) call: a GET of a bucket (path-style `/bucket`) with a listing query."""
        bucket_only = self.path.strip("/").count("/") == 0
        return (
            self.method == "GET" and bucket_only and ("list-type=" in self.query or "prefix=" in self.query)
        )


@dataclass
class S3Server:
    """A running moto server: its endpoint and the AWS variables that point a client at it.

    `requests` records every request the server answered (any client: pyarrow's C++ one, s3fs, boto3), so
    a test counts what the code under test asked of the store, server-side."""

    endpoint: str
    requests: list[S3Request] = field(default_factory=list)

    def lists_since(self, mark: int) -> list[S3Request]:
        """The listing requests answered after `mark` (a `len(server.requests)` taken before)."""
        return [request for request in self.requests[mark:] if request.is_list]

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
        }

    def client(self) -> object:
        import boto3  # imported when a test uses the server, not by every test session

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket; returns its `s3://` URI (with a prefix, as deployments usually have)."""
        name = f"kitsync-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return f"s3://{name}/lake-root"

    def keys(self, uri: str) -> list[str]:
        """Every key under an `s3://bucket/prefix` URI, relative to the prefix."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        paginator = self.client().get_paginator("list_objects_v2")  # type: ignore[attr-defined]
        keys = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/"):
            keys += [item["Key"][len(prefix) + 1 :] for item in page.get("Contents", [])]
        return sorted(keys)

    def copy_prefix(self, source: str, target: str) -> None:
        """Copy every object under one URI to another (a lake snapshot for a test case)."""
        client = self.client()
        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        target_bucket, _, target_prefix = target.removeprefix("s3://").partition("/")
        for key in self.keys(source):
            client.copy_object(  # type: ignore[attr-defined]
                Bucket=target_bucket,
                Key=f"{target_prefix}/{key}",
                CopySource={"Bucket": bucket, "Key": f"{prefix}/{key}"},
            )


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """moto's threaded server on a free loopback port, for as long as the context lasts."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    port = _free_port()
    recorded = S3Server(endpoint=f"http://127.0.0.1:{port}")

    class RecordingMotoServer(ThreadedMotoServer):
        """moto's threaded server with its WSGI app wrapped to record each request (moto has no hook)."""

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def recording(environ: dict[str, Any], start_response: Any) -> Any:
                recorded.requests.append(
                    S3Request(
                        environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")
                    )
                )
                return app(environ, start_response)

            self._server = make_server(
                self._ip_address, self._port, recording, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = RecordingMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield recorded
    finally:
        server.stop()


@contextmanager
def aws_environment(server: S3Server) -> Iterator[None]:
    """The AWS variables pointing at `server`, set for the duration (restored after)."""
    saved = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
