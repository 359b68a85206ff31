#!/usr/bin/env python3
"""moto_server (the EC2 emulator) on 127.0.0.1, with a small proxy in front that can answer
chosen EC2 actions with an error (capacity, quota, permission) or lose the answer to one after
moto carried it out. Test-only.

Prints one JSON line: {"endpoint": proxy URL for AWS_ENDPOINT_URL, "moto": moto's own URL}.
Exits when stdin closes (the test that started it is gone).

Proxy control (under /__munero/):
  POST /__munero/rules     JSON list of rules, replacing the current ones
  GET  /__munero/requests  every EC2 request seen: {"action", "params"}
A rule: {"action": "RunInstances", "when": {"InstanceType": "g4dn.xlarge", "SubnetId": "subnet-x"},
         "times": 1, "code": "InsufficientInstanceCapacity", "message": "...", "status": 500}
  or {"action": ..., "lose_answer": true, "times": 1}: forward, then answer 503 instead.

CreateImage with a TagSpecification for "snapshot" (which AWS takes and moto 5.1 does not
implement) is forwarded without it, and the proxy then tags the image's EBS snapshots with
those tags through moto, as AWS does in the same call.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def find_moto_server():
    cands = [os.environ.get("MUNERO_MOTO_SERVER"), os.path.join(HERE, ".venv/bin/moto_server")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit("moto_server not found: run scripts/setup/moto.sh (or set MUNERO_MOTO_SERVER)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    env = dict(os.environ)
    env.update({
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
        "MOTO_AMIS_PATH": os.path.join(HERE, "amis.json"),
    })
    proc = subprocess.Popen([find_moto_server(), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"moto_server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=2)
            return proc, url
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not answer within 60 s")


class State:
    def __init__(self, moto):
        self.moto = moto
        self.rules = []
        self.requests = []
        self.lock = threading.Lock()

    def match(self, action, params):
        with self.lock:
            for r in self.rules:
                if r.get("action") != action or r.get("times", 1) <= 0:
                    continue
                if all(params.get(k) == v for k, v in r.get("when", {}).items()):
                    r["times"] = r.get("times", 1) - 1
                    return dict(r)
        return None


def split_snapshot_tags(params):
    """CreateImage params without the snapshot TagSpecifications (renumbered), and the tags of
    those as [{"Key", "Value"}]."""
    specs, rest = {}, {}
    for k, v in params.items():
        if k.startswith("TagSpecification."):
            n, _, field = k[len("TagSpecification."):].partition(".")
            specs.setdefault(int(n), {})[field] = v
        else:
            rest[k] = v
    snap_tags, n = [], 0
    for _, fields in sorted(specs.items()):
        if fields.get("ResourceType") == "snapshot":
            i = 1
            while f"Tag.{i}.Key" in fields:
                snap_tags.append({"Key": fields[f"Tag.{i}.Key"], "Value": fields.get(f"Tag.{i}.Value", "")})
                i += 1
            continue
        n += 1
        for field, v in fields.items():
            rest[f"TagSpecification.{n}.{field}"] = v
    return rest, snap_tags


def region_of(headers):
    auth = headers.get("Authorization", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    return scope[2] if len(scope) > 2 else "us-east-1"


def tag_image_snapshots(moto, region, response, tags):
    import boto3
    import re
    m = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", response)
    if not m or not tags:
        return
    c = boto3.client("ec2", endpoint_url=moto, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    image = c.describe_images(ImageIds=[m.group(1).decode()])["Images"][0]
    snaps = [b["Ebs"]["SnapshotId"] for b in image.get("BlockDeviceMappings", []) if b.get("Ebs", {}).get("SnapshotId")]
    if snaps:
        c.create_tags(Resources=snaps, Tags=tags)


def error_xml(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f'<Message>{message}</Message></Error></Errors><RequestID>munero-proxy</RequestID></Response>').encode()


def handler(state):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body, ctype="text/xml"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/__munero/requests"):
                with state.lock:
                    return self.reply(200, json.dumps(state.requests).encode(), "application/json")
            self.forward(b"")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/__munero/rules"):
                with state.lock:
                    state.rules = json.loads(body or b"[]")
                return self.reply(200, b"{}", "application/json")
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            action = params.get("Action", "")
            with state.lock:
                state.requests.append({"action": action, "params": params})
            rule = state.match(action, params)
            if rule and rule.get("lose_answer"):
                self.forward(body, send=False)
                return self.reply(503, error_xml("ServiceUnavailable", "the answer was lost on the way"))
            if rule:
                return self.reply(rule.get("status", 400), error_xml(rule["code"], rule.get("message", rule["code"])))
            if action == "CreateImage":
                rest, snap_tags = split_snapshot_tags(params)
                if snap_tags:
                    status, data, ctype = self.forward(urllib.parse.urlencode(rest).encode(), send=False)
                    if status == 200:
                        tag_image_snapshots(state.moto, region_of(self.headers), data, snap_tags)
                    return self.reply(status, data, ctype)
            self.forward(body)

        def forward(self, body, send=True):
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            req = urllib.request.Request(state.moto + self.path, data=body or None, headers=headers, method=self.command)
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "text/xml")
            except urllib.error.HTTPError as e:
                status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "text/xml")
            if send:
                self.reply(status, data, ctype)
            return status, data, ctype

    return H


def main():
    proc, moto = start_moto()
    state = State(moto)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(json.dumps({"endpoint": f"http://127.0.0.1:{srv.server_address[1]}", "moto": moto}), flush=True)
    try:
        sys.stdin.read()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
