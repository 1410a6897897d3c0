"""``make demo``: permatoken against the local Meta sandbox, on the embedded defaults.

Starts the sandbox, makes a fresh home (SQLite + generated key) under ``.demo/``, adds a few
credentials whose tokens live for minutes, then runs ``permatoken serve`` so a newcomer watches
renewals and reminders happen live. Every command it runs is printed as you would type it.

Ctrl-C stops everything cleanly (exit 0): the sandbox, the service and every command the demo
runs live in sessions of their own, so the terminal's SIGINT reaches only the demo, which then
stops them in order.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(".demo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NoticeReceiver(http.server.BaseHTTPRequestHandler):
    """A real HTTP endpoint for Apprise's json:// channel: prints every notice it receives."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")
        except ValueError:
            data = {}
        title = str(data.get("title") or "")
        lines = [line.rstrip() for line in str(data.get("message") or "").splitlines()]
        # The whole notice, as a human receives it: its last lines say what to do.
        text = "\n".join([f"  notice | {title}"] + [f"         | {line}" for line in lines if line])
        print(f"\033[33m{text}\033[0m", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


class Demo:
    def __init__(self, duration: float | None, root: Path = ROOT) -> None:
        self.duration = duration
        self.root = root.resolve()
        self.home = self.root / "home"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sandbox_port = _free_port()
        self.api_port = _free_port()
        self.receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoticeReceiver)
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        notify = f"json://127.0.0.1:{self.receiver.server_address[1]}/notices"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.env = dict(os.environ)
        self.env.update(
            PERMATOKEN_HOME=str(self.home),
            PERMATOKEN_GRAPH_URL=self.sandbox_url,
            PERMATOKEN_CLOCK="sandbox",
            PYTHONUNBUFFERED="1",
            PERMATOKEN_NOTIFY_URLS=json.dumps([notify]),
            PERMATOKEN_SCHEDULER_INTERVAL="2",
        )
        for var in (
            "PERMATOKEN_DATABASE_URL",
            "PERMATOKEN_KEY",
            "PERMATOKEN_KEY_FILE",
            "PERMATOKEN_CONFIG",
        ):
            self.env.pop(var, None)

    # --- helpers --------------------------------------------------------------------
    def cli(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        show: str | None = None,
        timeout: float = 300.0,
    ) -> str:
        print(f"$ {show or 'permatoken ' + ' '.join(args)}", flush=True)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "permatoken", *args],
                input=stdin.encode() if stdin is not None else None,
                env=self.env,
                capture_output=True,
                check=False,
                start_new_session=True,  # Ctrl-C is the demo's to handle, not this command's
                timeout=timeout,  # a stuck command must never keep the demo (and make) waiting
            )
        except subprocess.TimeoutExpired:
            if check:
                raise SystemExit(
                    f"demo step failed: permatoken {args[0]} took over {timeout:.0f} s"
                ) from None
            print(f"(permatoken {args[0]} took over {timeout:.0f} s; skipped)", flush=True)
            return ""
        out = proc.stdout.decode()
        if proc.returncode and check:
            sys.stderr.write(proc.stderr.decode())
            raise SystemExit(f"demo step failed: permatoken {args[0]} (exit {proc.returncode})")
        sys.stdout.write(out if not out.startswith("pt_") else "")
        sys.stderr.write(proc.stderr.decode())
        return out

    def sandbox(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = httpx.request(method, self.sandbox_url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            args,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        # The service and the sandbox first: whatever happens next, they are told to stop.
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        self.receiver.shutdown()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    # --- steps ------------------------------------------------------------------------
    def run(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        say("1. Start the sandbox (a faithful local imitation of Meta's Graph API)")
        fixtures_path = self.root / "fixtures.json"
        self.start(
            [
                sys.executable,
                "-m",
                "permatoken.sandbox",
                "--port",
                str(self.sandbox_port),
                "--fixtures-out",
                str(fixtures_path),
            ],
            self.root / "sandbox.log",
        )
        self._wait_for(
            lambda: fixtures_path.exists() and self._up(self.sandbox_url + "/_sandbox/clock"),
            "sandbox",
        )
        fx = json.loads(fixtures_path.read_text())
        print(f"sandbox on {self.sandbox_url}; seeded world in {fixtures_path}")
        # Demo tokens live for minutes instead of 60 days so renewals happen while you watch.
        self.sandbox(
            "PATCH", "/_sandbox/config", {"long_lived_lifetime": 180, "dashboard_lifetime": 300}
        )
        app = fx["apps"][0]
        admin = fx["tokens"]["system_user"]
        t60 = self.sandbox(
            "POST", "/_sandbox/tokens", {"kind": "system_user_60d", "app_id": app["id"]}
        )
        dash = self.sandbox("POST", "/_sandbox/tokens", {"kind": "dashboard", "app_id": app["id"]})
        secret_file = self.root / "app-secret.txt"
        secret_file.write_text(app["secret"])
        secret_file.chmod(0o600)

        say("2. Initialise permatoken with its embedded defaults (SQLite, generated key)")
        self.cli("init")
        self.second_shell()

        say("3. Add tokens: permatoken asks Meta's debug_token what each one really is")
        self.cli(
            "add",
            "demo/messaging",
            "--issuer",
            "meta-system-refresh",
            "--app-id",
            app["id"],
            "--app-secret-file",
            str(secret_file),
            "--waba-id",
            fx["wabas"][0]["id"],
            "--phone-number-id",
            fx["phone_numbers"][0]["id"],
            stdin=t60["value"],
            show=f"permatoken add demo/messaging --issuer meta-system-refresh --app-id {app['id']} --app-secret-file app-secret.txt < token.txt",
        )
        self.cli(
            "add",
            "demo/admin",
            "--issuer",
            "manual",
            "--app-id",
            app["id"],
            stdin=admin["value"],
            show=f"permatoken add demo/admin --app-id {app['id']} < admin-token.txt",
        )
        self.cli(
            "add",
            "demo/dashboard",
            "--issuer",
            "manual",
            "--app-id",
            app["id"],
            stdin=dash["value"],
            show=f"permatoken add demo/dashboard --app-id {app['id']} < dashboard-token.txt",
        )
        # Minute-scale policy for the demo's minute-scale tokens (defaults: 14, 7, 3, 1 days).
        self.cli("policy", "set", "demo/dashboard", "--remind-before", "4m,2m,1m")
        self.cli("status")

        if self._has("permatoken.scheduler") and self._has("permatoken.server"):
            self.serve()
        else:
            self.time_travel()
        say("Done")
        print(
            f"Everything the demo made is under {self.root}. Run `make demo` again for a fresh start."
        )

    def second_shell(self) -> None:
        """How to run permatoken against this demo from another terminal."""
        script = Path(sys.executable).with_name("permatoken")
        command = shlex.quote(str(script)) if script.exists() else f"{sys.executable} -m permatoken"
        exports = " ".join(
            f"{var}={shlex.quote(self.env[var])}"
            for var in ("PERMATOKEN_HOME", "PERMATOKEN_GRAPH_URL", "PERMATOKEN_CLOCK")
        )
        print("To look around from a second shell while the demo runs:")
        print(f"  export {exports}")
        print(f"  {command} status")

    def time_travel(self) -> None:
        say("4. Travel 2 minutes forward in the sandbox and renew (the token lives 3 minutes)")
        self.sandbox("POST", "/_sandbox/clock", {"advance_seconds": 120})
        self.cli("rotate", "demo/messaging")
        self.cli("status")

    def serve(self) -> None:
        say("4. Run the service: scheduler + HTTP API (tokens renew at 2/3 of their 3-minute life)")
        print(
            "Notices go to a local webhook (Apprise json://) and are printed as `notice |` lines."
        )
        key = self.cli(
            "keys",
            "create",
            "--role",
            "admin",
            "--name",
            "demo",
            show="permatoken keys create --role admin --name demo",
        ).strip()
        log = self.root / "serve.log"
        self.start([sys.executable, "-m", "permatoken", "serve", "--port", str(self.api_port)], log)
        api = f"http://127.0.0.1:{self.api_port}"
        self._wait_for(lambda: self._up(api + "/healthz"), "permatoken serve")
        print(f"API: {api}   (OpenAPI document: {api}/openapi.json)")
        print(f"demo admin key: {key}")
        print(f"dashboard:      {api}/ui/   (sign in with the demo admin key)")
        print(
            f"read a token:   curl -s -H 'Authorization: Bearer {key}' {api}/v1/tokens/demo/messaging"
        )
        print("Watching for renewals (Ctrl-C to stop)…")
        deadline = None if self.duration is None else time.monotonic() + self.duration
        seen = 0
        last_status = time.monotonic()
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1)
                lines = log.read_text(errors="replace").splitlines()
                for line in lines[seen:]:
                    print(f"  serve | {line}")
                seen = len(lines)
                if time.monotonic() - last_status > 45:
                    last_status = time.monotonic()
                    self.cli("status")
        except KeyboardInterrupt:
            print("\nstopping (Ctrl-C)…", flush=True)
        self.cli("status", check=False, timeout=30)

    # --- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _has(module: str) -> bool:
        import importlib.util

        return importlib.util.find_spec(module) is not None

    @staticmethod
    def _up(url: str) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def _wait_for(self, ready: Any, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{what} exited early; see the logs in {self.root}")
            time.sleep(0.1)
        raise SystemExit(
            f"{what} did not start within {timeout:.0f} s; see the logs in {self.root}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m permatoken.demo", description=__doc__)
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--dir", type=Path, default=ROOT, help="where the demo keeps its files (default .demo)"
    )
    args = parser.parse_args(argv)
    # Ctrl-C is the demo's to handle, whatever its parent left: a shell starts a background job
    # (or a CI runner its steps) with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt, so the demo could not be stopped with SIGINT at all.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # piped into make or a log: line by line
    demo = Demo(args.duration, args.dir)
    try:
        demo.run()
    except KeyboardInterrupt:
        # Exit 0, not 130: make reports a failing recipe ("make: *** … Error 130") but stays
        # quiet when the command it ran ends well after the Ctrl-C.
        print(f"\nstopped (Ctrl-C). The demo's files are under {demo.root}.", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        demo.stop_all()


if __name__ == "__main__":
    main()
