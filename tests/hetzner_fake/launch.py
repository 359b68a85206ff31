#!/usr/bin/env python3
"""Start the Hetzner API fake, optionally behind Stoplight Prism (contract check).

    python3 tests/hetzner_fake/launch.py [--prism] [--exit-on-stdin-eof] [fake options]

When both answer, prints ONE JSON line on stdout, for example

    {"endpoint": "http://127.0.0.1:41234", "control": "http://127.0.0.1:40001",
     "prism": true, "contract_check": "on", ...}

and stays in the foreground until SIGTERM/SIGINT, until its parent process dies, or (with
--exit-on-stdin-eof) until its stdin closes; it then stops the fake and Prism.

`endpoint` is what HCLOUD_ENDPOINT must be set to: http://127.0.0.1:PORT/v1 in both modes (Prism's
port when the contract check runs, the fake's otherwise; Prism is given a copy of the spec mounted
under /v1, see normalized_spec). `control` is the fake's own root, for the /__fake/ control API
(never proxied).

The contract check needs Prism (scripts/setup/prism.sh installs it) and the spec at
<repo>/../shared/specs/hcloud-openapi.json (override with --spec or MUNERO_HCLOUD_SPEC). When the
spec is absent the fake runs alone and "contract check skipped: spec not found at ..." is printed
on stderr (and in the JSON line's contract_check field).
"""

import argparse
import ctypes
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SPEC = os.path.normpath(os.path.join(REPO, "..", "shared", "specs", "hcloud-openapi.json"))
PRISM_BIN = os.path.join(HERE, "node_modules", ".bin", "prism")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log(msg):
    sys.stderr.write("hetzner-fake: %s\n" % msg)
    sys.stderr.flush()


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when the launcher (its parent) dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def normalized_spec(spec_path, out_dir):
    """Write the copy of the spec that Prism loads, with two mechanical changes:

    1. response range keys read 4XX/5XX instead of 4xx/5xx: the published file spells them in
       lower case, Prism only matches the upper-case form that OpenAPI 3 defines and would
       otherwise leave every error response unchecked (a warning only);
    2. every path is mounted under /v1, as on the real API (https://api.hetzner.cloud/v1), so that
       the endpoint has the same shape with and without Prism and a client that drops the /v1
       segment when joining URLs fails here as it would in production.
    Schemas, parameters and bodies are untouched."""
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    changed = 0
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            responses = op.get("responses") if isinstance(op, dict) else None
            if not isinstance(responses, dict):
                continue
            for key in list(responses):
                if re.fullmatch(r"[1-5]xx", key):
                    responses[key.upper()] = responses.pop(key)
                    changed += 1
    spec["paths"] = {"/v1" + path: ops for path, ops in spec.get("paths", {}).items()}
    path = os.path.join(out_dir, "hcloud-openapi.prism.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    return path, changed


def http_status(url, headers=None, method="GET", timeout=2.0):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
               "upgrade", "content-length", "host", "expect"}


class Recorder(BaseHTTPRequestHandler):
    """Pass-through in front of Prism that writes every exchange Prism refused or flagged to the
    violations log with Prism's reasons (Prism's own log names the request but not the reasons)."""

    protocol_version = "HTTP/1.1"
    upstream_port = None
    violations_log = None
    echo = False
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.forward()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=300)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            status, reason, resp_headers, data = resp.status, resp.reason, resp.getheaders(), resp.read()
        except (OSError, http.client.HTTPException) as err:
            status, reason = 502, "Bad Gateway"
            data = json.dumps({"error": {"code": "contract_proxy_error", "message": "Prism did not answer: %s" % err,
                                         "details": None}}).encode()
            resp_headers = [("Content-Type", "application/json")]
        finally:
            conn.close()
        # Log before answering, so that a test that reads the log right after its request sees it.
        self.record(status, dict((k.lower(), v) for k, v in resp_headers), body, data)
        self.send_response(status, reason)
        for key, value in resp_headers:
            if key.lower() not in HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def record(self, status, headers, body, data):
        ctype = headers.get("content-type", "")
        flagged = headers.get("sl-violations")
        if not ctype.startswith("application/problem+json") and not flagged:
            return
        try:
            problem = json.loads(data.decode("utf-8"))
        except ValueError:
            problem = data.decode("utf-8", "replace")[:2000]
        if flagged and not ctype.startswith("application/problem+json"):
            try:
                problem = {"sl-violations": json.loads(flagged)}
            except ValueError:
                problem = {"sl-violations": flagged}
        entry = {"time": time.time(), "method": self.command, "path": self.path, "status": status,
                 "request_body": body.decode("utf-8", "replace")[:4000] if body else None, "prism": problem}
        with self.lock, open(self.violations_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        if self.echo:
            reasons = problem.get("validation") if isinstance(problem, dict) else None
            if isinstance(problem, dict) and "sl-violations" in problem:
                reasons = problem["sl-violations"]
            text = "; ".join("%s: %s" % (".".join(map(str, r.get("location", []))), r.get("message"))
                             for r in reasons or [] if isinstance(r, dict))
            title = problem.get("title") if isinstance(problem, dict) else problem
            log("contract: %s %s -> %d %s %s" % (self.command, self.path, status, title, text))


class Launcher:
    def __init__(self, args):
        # Taken first thing: a parent that dies while Prism starts must still be noticed.
        self.parent = os.getppid()
        self.args = args
        self.procs = []
        self.recorder = None
        self.stopping = False
        self.failed = False
        self.own_log_dir = not args.log_dir
        self.log_dir = args.log_dir or tempfile.mkdtemp(prefix="hcloud-fake-")
        os.makedirs(self.log_dir, exist_ok=True)
        self.prism_log = os.path.join(self.log_dir, "prism.log")
        self.violations_log = os.path.join(self.log_dir, "violations.log")
        self.fake_log = os.path.join(self.log_dir, "fake.log")

    def start_fake(self):
        a = self.args
        cmd = [sys.executable, os.path.join(HERE, "fake.py"), "--host", "127.0.0.1", "--port", str(a.port),
               "--action-polls", str(a.action_polls), "--action-seconds", str(a.action_seconds),
               "--starting-polls", str(a.starting_polls), "--rate-limit", str(a.rate_limit),
               "--rate-refill", str(a.rate_refill), "--latency-ms", str(a.latency_ms),
               "--release-on-delete", a.release_on_delete, "--no-root"]
        err = open(self.fake_log, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                preexec_fn=die_with_parent)
        self.procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline().decode() if ready else ""
        m = re.match(r"LISTENING (\d+)", line)
        if not m:
            raise RuntimeError("the fake did not start (see %s)" % self.fake_log)
        return int(m.group(1))

    def start_prism(self, spec, fake_port):
        with open(self.prism_log, "ab"), open(self.violations_log, "ab"):
            pass
        for _attempt in range(3):
            port = self.args.prism_port or free_port()
            cmd = [PRISM_BIN, "proxy", "-h", "127.0.0.1", "-p", str(port), "--errors", spec,
                   "http://127.0.0.1:%d" % fake_port]
            proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            threading.Thread(target=self.pump_prism, args=(proc,), daemon=True).start()
            deadline = time.time() + self.args.timeout
            while time.time() < deadline and proc.poll() is None:
                # Any HTTP answer proves Prism listens; a 200 proves the whole chain works.
                if http_status("http://127.0.0.1:%d/v1/locations" % port,
                               {"Authorization": "Bearer launcher-probe"}) == 200:
                    self.procs.append(proc)
                    return port
                time.sleep(0.2)
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
                raise RuntimeError("Prism did not answer within %ss (see %s)" % (self.args.timeout, self.prism_log))
            log("Prism exited early (code %s), retrying on another port" % proc.returncode)
        raise RuntimeError("Prism could not be started (see %s)" % self.prism_log)

    def pump_prism(self, proc):
        with open(self.prism_log, "a", encoding="utf-8") as out:
            for raw in proc.stdout:
                line = ANSI.sub("", raw.decode("utf-8", "replace"))
                # Prism prints one line per operation of the spec at start-up: skip those.
                if "[CLI]" in line and not re.search(r"listening|error|fatal|warn", line, re.IGNORECASE):
                    continue
                out.write(line)
                out.flush()

    def start_recorder(self, prism_port):
        handler = type("BoundRecorder", (Recorder,), {"upstream_port": prism_port,
                                                      "violations_log": self.violations_log,
                                                      "echo": not self.args.quiet})
        server_cls = type("RecorderServer", (ThreadingHTTPServer,), {"request_queue_size": 128,
                                                                       "daemon_threads": True})
        self.recorder = server_cls(("127.0.0.1", self.args.recorder_port), handler)
        threading.Thread(target=self.recorder.serve_forever, daemon=True).start()
        return self.recorder.server_address[1]

    def run(self):
        a = self.args
        fake_port = self.start_fake()
        control = "http://127.0.0.1:%d" % fake_port
        info = {"endpoint": control + "/v1", "control": control, "prism": False,
                "contract_check": "off", "fake_port": fake_port, "prism_port": None,
                "spec": None, "log_dir": self.log_dir, "prism_log": None, "violations_log": None,
                "pid": os.getpid()}
        if a.prism:
            spec = a.spec or os.environ.get("MUNERO_HCLOUD_SPEC") or DEFAULT_SPEC
            if not os.path.isfile(spec):
                info["contract_check"] = "skipped: spec not found at %s" % spec
                log("contract check skipped: spec not found at %s" % spec)
            else:
                if not os.access(PRISM_BIN, os.X_OK):
                    raise RuntimeError("Prism is not installed in %s: run scripts/setup/prism.sh" % HERE)
                prism_spec, _ = normalized_spec(spec, self.log_dir)
                prism_port = self.start_prism(prism_spec, fake_port)
                front_port = self.start_recorder(prism_port)
                info.update({"endpoint": "http://127.0.0.1:%d/v1" % front_port, "prism": True,
                             "contract_check": "on", "prism_port": prism_port, "spec": spec,
                             "prism_log": self.prism_log, "violations_log": self.violations_log})
        # Forget the start-up probes (request log, rate-limit tokens): tests start from a clean fake.
        http_status(control + "/__fake/reset", method="POST")
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        if not a.quiet:
            log("ready: HCLOUD_ENDPOINT=%s (contract check %s; control API %s/__fake/)"
                % (info["endpoint"], info["contract_check"], control))
        return self.wait()

    def wait(self):
        parent = self.parent
        stdin_closed = threading.Event()
        if self.args.exit_on_stdin_eof:
            def watch_stdin():
                try:
                    while sys.stdin.buffer.read1(4096):
                        pass
                except (OSError, ValueError):
                    pass
                stdin_closed.set()
            threading.Thread(target=watch_stdin, daemon=True).start()
        while not self.stopping:
            for proc in self.procs:
                if proc.poll() is not None:
                    self.failed = True
                    name = "fake" if proc.args[0] == sys.executable else "prism"
                    log("%s exited with code %s; stopping" % (name, proc.returncode))
                    return 1
            if parent != 1 and os.getppid() != parent:
                log("parent process went away; stopping")
                return 0
            if stdin_closed.is_set():
                return 0
            time.sleep(0.2)
        return 0

    def stop(self, *_):
        self.stopping = True

    def cleanup(self):
        if self.recorder is not None:
            self.recorder.shutdown()
            self.recorder.server_close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # A temp log dir goes away unless it holds violations (kept, and named, for a post-mortem).
        if self.own_log_dir and not self.args.keep_logs and not self.failed:
            try:
                has_violations = os.path.getsize(self.violations_log) > 0
            except OSError:
                has_violations = False
            if has_violations:
                log("contract violations were recorded: kept %s" % self.violations_log)
            else:
                shutil.rmtree(self.log_dir, ignore_errors=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Start the Hetzner API fake (and Prism) for tests.")
    p.add_argument("--prism", action="store_true", help="run the contract check (Prism proxy with --errors)")
    p.add_argument("--spec", help="OpenAPI file (default: <repo>/../shared/specs/hcloud-openapi.json)")
    p.add_argument("--port", type=int, default=0, help="fake port (0 = any free port)")
    p.add_argument("--prism-port", type=int, default=0, help="Prism port (0 = any free port)")
    p.add_argument("--action-polls", type=int, default=2)
    p.add_argument("--action-seconds", type=float, default=30.0)
    p.add_argument("--starting-polls", type=int, default=1)
    p.add_argument("--rate-limit", type=int, default=3600)
    p.add_argument("--rate-refill", type=float, default=1.0)
    p.add_argument("--release-on-delete", choices=("after_action", "immediate"), default="after_action")
    p.add_argument("--latency-ms", type=int, default=0, help="delay every API request by this much (0 = none)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for Prism to answer")
    p.add_argument("--log-dir", help="where prism.log, violations.log and fake.log go (default: a new temp dir)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the temp log dir on exit (by default it is kept only when it holds violations)")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="stop when stdin closes (give the launcher a pipe as stdin, then drop it)")
    p.add_argument("--recorder-port", type=int, default=0,
                   help="port of the pass-through in front of Prism that logs violations (0 = any free port)")
    p.add_argument("--quiet", action="store_true", help="no 'ready' line and no contract violations echoed on stderr")
    return p.parse_args(argv)


def main(argv=None):
    launcher = Launcher(parse_args(argv))
    signal.signal(signal.SIGTERM, launcher.stop)
    signal.signal(signal.SIGINT, launcher.stop)
    signal.signal(signal.SIGHUP, launcher.stop)
    code = 1
    try:
        code = launcher.run()
    except RuntimeError as err:
        launcher.failed = True
        log(str(err))
    finally:
        launcher.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
