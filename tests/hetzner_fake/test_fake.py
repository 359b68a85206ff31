#!/usr/bin/env python3
"""Self-tests of the Hetzner API fake, directly and through Prism (contract check).

Run:  python3 tests/hetzner_fake/test_fake.py        (unittest; prints "N passed, N failed")
  or: python3 -m pytest tests/hetzner_fake -q        (when pytest is installed)

The contract tests need Prism (scripts/setup/prism.sh) and ../shared/specs/hcloud-openapi.json;
without the spec they are skipped with "contract check skipped: spec not found at ...".
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake  # noqa: E402
import launch  # noqa: E402

MANAGED = {"munero-managed": "true", "munero-trial": "alpha", "munero-expires": "1795000000"}


def ed25519_public_key(seed, comment="op@test"):
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(seed.encode()).digest()
    return "ssh-ed25519 %s %s" % (base64.b64encode(blob).decode(), comment)


class Launched:
    """One launcher process (fake, optionally behind Prism) for a test class."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "launch.py"), "--exit-on-stdin-eof"]
                                     + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError("launcher failed (exit %s)" % self.proc.returncode)
        self.info = json.loads(line)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:  # never leave it running (its children die with it)
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.proc.stdout.close()


def request(url, method="GET", body=None, token="test-token", headers=None):
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return err.code, err.headers, parsed


class ApiBehaviour:
    """API behaviour checks, run once against the fake directly and once through Prism."""

    launch_args = ()
    via_prism = False

    @classmethod
    def setUpClass(cls):
        cls.launched = Launched(*cls.launch_args)
        cls.info = cls.launched.info
        cls.base = cls.info["endpoint"]
        cls.control = cls.info["control"]

    @classmethod
    def tearDownClass(cls):
        cls.launched.close()

    def setUp(self):
        status, _, _ = request(self.control + "/__fake/reset", "POST", {})
        self.assertEqual(status, 200)
        self.expect_violations = False
        self.violations_before = self.violation_lines()

    def tearDown(self):
        if self.via_prism and not self.expect_violations:
            new = self.violation_lines()[len(self.violations_before):]
            self.assertEqual(new, [], "Prism reported contract violations")

    def violation_lines(self):
        path = self.info.get("violations_log")
        if not path:
            return []
        with open(path, encoding="utf-8") as fh:
            return fh.readlines()

    # -- helpers --
    def api(self, method, path, body=None, token="test-token"):
        return request(self.base + path, method, body, token)

    def ctl(self, method, path, body=None):
        status, _, out = request(self.control + "/__fake/" + path, method, body, token=None)
        self.assertLess(status, 300, out)
        return out

    def assert_error(self, status, out, expected_status, code=None):
        self.assertEqual(status, expected_status, out)
        if code is not None and (not self.via_prism or isinstance(out, dict) and "error" in out):
            self.assertEqual(out["error"]["code"], code, out)

    def wait_action(self, action_id, path="/actions/%d"):
        for _ in range(20):
            status, _, out = self.api("GET", path % action_id)
            self.assertEqual(status, 200, out)
            if out["action"]["status"] != "running":
                return out["action"]
        self.fail("action %d never finished" % action_id)

    def make_key(self, name="alpha-key", seed="alpha", labels=MANAGED):
        status, _, out = self.api("POST", "/ssh_keys", {"name": name, "public_key": ed25519_public_key(seed),
                                                          "labels": labels})
        self.assertEqual(status, 201, out)
        return out["ssh_key"]

    def make_firewall(self, name="alpha-fw", labels=MANAGED, apply_to=None):
        body = {"name": name, "labels": labels, "rules": [
            {"direction": "in", "protocol": "tcp", "port": "80", "source_ips": ["0.0.0.0/0", "::/0"]},
            {"direction": "in", "protocol": "tcp", "port": "443", "source_ips": ["0.0.0.0/0", "::/0"]},
            {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["198.51.100.7/32"],
             "description": "operator"},
        ]}
        if apply_to is not None:
            body["apply_to"] = apply_to
        status, _, out = self.api("POST", "/firewalls", body)
        self.assertEqual(status, 201, out)
        return out["firewall"]

    def make_server(self, name="alpha", labels=MANAGED, firewalls=(), ssh_keys=("alpha-key",)):
        body = {"name": name, "server_type": "cpx41", "image": "ubuntu-24.04", "location": "fsn1",
                "ssh_keys": list(ssh_keys), "firewalls": [{"firewall": f} for f in firewalls],
                "user_data": "#cloud-config\npackage_update: true\n", "labels": labels,
                "public_net": {"enable_ipv4": True, "enable_ipv6": True}, "start_after_create": True}
        status, _, out = self.api("POST", "/servers", body)
        self.assertEqual(status, 201, out)
        return out

    # -- scenarios --
    def test_create_poll_list_delete_flow(self):
        key = self.make_key()
        fw = self.make_firewall()
        created = self.make_server(firewalls=[fw["id"]])
        server = created["server"]
        self.assertEqual(server["status"], "initializing")
        self.assertEqual(created["action"]["command"], "create_server")
        self.assertEqual(created["action"]["status"], "running")
        self.assertIsNone(created["root_password"])
        self.assertEqual([a["command"] for a in created["next_actions"]], ["start_server", "apply_firewall"])
        self.assertTrue(server["public_net"]["ipv4"]["ip"].startswith("203.0.113."))
        self.assertEqual(server["public_net"]["firewalls"], [{"id": fw["id"], "status": "pending"}])

        action = self.wait_action(created["action"]["id"])
        self.assertEqual((action["status"], action["progress"]), ("success", 100))
        self.assertIsNotNone(action["finished"])
        seen = []
        for _ in range(5):
            status, _, out = self.api("GET", "/servers/%d" % server["id"])
            self.assertEqual(status, 200, out)
            seen.append(out["server"]["status"])
            if seen[-1] == "running":
                break
        self.assertEqual(seen, ["starting", "running"])

        # hcloud-go style: poll several actions at once through the list endpoint.
        ids = "&".join("id=%d" % a["id"] for a in created["next_actions"])
        for _ in range(5):
            status, _, out = self.api("GET", "/actions?" + ids)
            self.assertEqual(status, 200, out)
            if all(a["status"] == "success" for a in out["actions"]):
                break
        self.assertEqual([a["status"] for a in out["actions"]], ["success", "success"])
        status, _, out = self.api("GET", "/servers/%d" % server["id"])
        self.assertEqual(out["server"]["public_net"]["firewalls"], [{"id": fw["id"], "status": "applied"}])

        status, _, out = self.api("GET", "/servers?label_selector=munero-managed%3Dtrue%2Cmunero-trial%3Dalpha")
        self.assertEqual(status, 200, out)
        self.assertEqual([s["id"] for s in out["servers"]], [server["id"]])
        self.assertEqual(out["meta"]["pagination"]["total_entries"], 1)
        status, _, out = self.api("GET", "/firewalls?label_selector=munero-trial%3Dalpha")
        self.assertEqual(out["firewalls"][0]["applied_to"], [{"type": "server", "server": {"id": server["id"]}}])

        status, _, out = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assert_error(status, out, 422, "resource_in_use")

        status, _, out = self.api("DELETE", "/servers/%d" % server["id"])
        self.assertEqual(status, 200, out)
        self.assertEqual(out["action"]["command"], "delete_server")
        self.assertEqual(self.wait_action(out["action"]["id"])["status"], "success")
        status, _, out = self.api("GET", "/servers/%d" % server["id"])
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("GET", "/firewalls/%d" % fw["id"])
        self.assertEqual(out["firewall"]["applied_to"], [])

        status, _, _ = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assertEqual(status, 204)
        status, _, _ = self.api("DELETE", "/ssh_keys/%d" % key["id"])
        self.assertEqual(status, 204)
        for kind in ("servers", "firewalls", "ssh_keys"):
            status, _, out = self.api("GET", "/" + kind)
            self.assertEqual((status, out[kind]), (200, []))

    def test_instant_actions_when_configured(self):
        self.ctl("POST", "config", {"action_polls": 0, "starting_polls": 0})
        self.make_key()
        out = self.make_server()
        self.assertEqual(out["action"]["status"], "success")
        self.assertEqual(out["server"]["status"], "running")
        self.assertEqual({a["status"] for a in out["next_actions"]}, {"success"})
        status, _, out = self.api("DELETE", "/servers/%d" % out["server"]["id"])
        self.assertEqual(out["action"]["status"], "success")

    def test_reset_restores_start_up_config(self):
        self.ctl("POST", "config", {"action_polls": 7})
        self.ctl("POST", "reset", {})
        self.assertEqual(self.ctl("GET", "config")["action_polls"], 2)

    def test_latency_delays_every_api_request_and_overlaps_concurrent_ones(self):
        self.ctl("POST", "config", {"latency_ms": 400})
        t0 = time.monotonic()
        self.assertEqual(self.api("GET", "/locations")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        t0 = time.monotonic()
        self.ctl("GET", "health")
        self.assertLess(time.monotonic() - t0, 0.4, "the control API is not delayed")
        # Eight requests at once: one latency for all of them, not eight in a row.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            t0 = time.monotonic()
            statuses = list(pool.map(lambda _: self.api("GET", "/servers")[0], range(8)))
            elapsed = time.monotonic() - t0
        self.assertEqual(statuses, [200] * 8)
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 8 * 0.4 / 2, "concurrent requests were served one after another")
        self.assertEqual(len(self.ctl("GET", "requests")["requests"]), 9)
        self.ctl("POST", "reset", {})
        self.assertEqual(self.ctl("GET", "config")["latency_ms"], 0)

    def test_every_response_carries_rate_limit_headers(self):
        for path in ("/locations", "/servers/424242"):
            _, headers, _ = self.api("GET", path)
            limit = int(headers["RateLimit-Limit"])
            remaining = int(headers["RateLimit-Remaining"])
            self.assertEqual(limit, 3600)
            self.assertLess(remaining, limit)
            self.assertGreater(int(headers["RateLimit-Reset"]), time.time() - 1)

    def test_invalid_token_is_unauthorized(self):
        status, _, out = self.api("GET", "/servers", token="invalid")
        self.assertEqual(status, 401)
        self.assertEqual(out, {"error": {"code": "unauthorized", "message": "unable to authenticate",
                                         "details": None}})

    def test_unknown_ids_are_not_found(self):
        for path in ("/servers/99999", "/firewalls/99999", "/ssh_keys/99999", "/actions/99999",
                     "/server_types/99999"):
            status, _, out = self.api("GET", path)
            self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("DELETE", "/servers/99999")
        self.assert_error(status, out, 404, "not_found")

    def test_duplicates_are_uniqueness_errors(self):
        self.make_key()
        status, _, out = self.api("POST", "/ssh_keys", {"name": "alpha-key", "public_key": ed25519_public_key("other")})
        self.assert_error(status, out, 409, "uniqueness_error")
        status, _, out = self.api("POST", "/ssh_keys", {"name": "other", "public_key": ed25519_public_key("alpha")})
        self.assert_error(status, out, 409, "uniqueness_error")
        self.assertEqual(out["error"]["details"], {"fields": [{"name": "public_key"}]})
        self.make_firewall()
        status, _, out = self.api("POST", "/firewalls", {"name": "alpha-fw"})
        self.assert_error(status, out, 409, "uniqueness_error")
        self.make_server()
        status, _, out = self.api("POST", "/servers", {"name": "alpha", "server_type": "cx22", "image": "debian-12"})
        self.assert_error(status, out, 409, "uniqueness_error")
        self.assertEqual(len(self.ctl("GET", "state")["servers"]), 1)

    def test_bad_input_is_invalid_input_and_creates_nothing(self):
        self.make_key()
        cases = [
            {"name": "not_a_hostname!", "server_type": "cpx41", "image": "ubuntu-24.04"},
            {"name": "ok", "server_type": "cpx999", "image": "ubuntu-24.04"},
            {"name": "ok", "server_type": "cpx41", "image": "windows-95"},
            {"name": "ok", "server_type": "cpx41", "image": "ubuntu-24.04", "location": "mars1"},
            {"name": "ok", "server_type": "cpx41", "image": "ubuntu-24.04", "ssh_keys": ["nope"]},
            {"name": "ok", "server_type": "cpx41", "image": "ubuntu-24.04", "firewalls": [{"firewall": 777}]},
            {"name": "ok", "server_type": "cpx41", "image": "ubuntu-24.04", "user_data": "x" * (32 * 1024 + 1)},
        ]
        for body in cases:
            status, _, out = self.api("POST", "/servers", body)
            self.assert_error(status, out, 422, "invalid_input")
            self.assertIn("fields", out["error"]["details"])
        # Firewall rules the real API refuses: no port for tcp, host bits set, unknown prefix form.
        for rule in ({"direction": "in", "protocol": "tcp", "source_ips": ["0.0.0.0/0"]},
                     {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["198.51.100.7/24"]},
                     {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["198.51.100.7"]},
                     {"direction": "in", "protocol": "icmp", "port": "22", "source_ips": ["0.0.0.0/0"]},
                     {"direction": "in", "protocol": "tcp", "port": "70000", "source_ips": ["0.0.0.0/0"]}):
            status, _, out = self.api("POST", "/firewalls", {"name": "bad", "rules": [rule]})
            self.assert_error(status, out, 422, "invalid_input")
        status, _, out = self.api("POST", "/ssh_keys", {"name": "k", "public_key": "ssh-ed25519 not-base64!"})
        self.assert_error(status, out, 422, "invalid_input")
        status, _, out = self.api("GET", "/servers?label_selector=a%3Db%3Dc")
        self.assert_error(status, out, 422, "invalid_input")
        state = self.ctl("GET", "state")
        self.assertEqual((state["servers"], state["firewalls"], len(state["ssh_keys"])), ([], [], 1))

    def test_label_value_with_colon_is_refused(self):
        status, _, out = self.api("POST", "/ssh_keys", {"name": "k", "public_key": ed25519_public_key("k"),
                                                        "labels": {"munero-expires": "2026-01-01T00:00:00Z"}})
        self.assertEqual(status, 422, out)
        if self.via_prism:  # the spec's label pattern catches it before the fake does
            self.assertIn("UNPROCESSABLE_ENTITY", out["type"])
            self.expect_violations = True
        else:
            self.assertEqual(out["error"]["code"], "invalid_input")
        self.assertEqual(self.ctl("GET", "state")["ssh_keys"], [])

    def test_rate_limit_bucket_runs_out_with_429(self):
        self.ctl("POST", "config", {"rate_limit": 3, "rate_refill": 0})
        statuses = []
        for _ in range(4):
            status, headers, out = self.api("GET", "/locations")
            statuses.append(status)
        self.assertEqual(statuses, [200, 200, 200, 429])
        self.assertEqual(out["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(headers["RateLimit-Remaining"], "0")
        self.assertEqual(headers["RateLimit-Limit"], "3")
        self.assertGreaterEqual(int(headers["RateLimit-Reset"]), int(time.time()))

    def test_injected_429_then_success(self):
        self.ctl("POST", "faults", {"method": "GET", "path_regex": r"^/v1/servers$", "status": 429,
                                    "count": 1, "reset_in": 2})
        status, headers, out = self.api("GET", "/servers")
        self.assert_error(status, out, 429, "rate_limit_exceeded")
        self.assertEqual(headers["RateLimit-Remaining"], "0")
        self.assertGreaterEqual(int(headers["RateLimit-Reset"]), int(time.time()) + 1)
        status, _, _ = self.api("GET", "/servers")
        self.assertEqual(status, 200)

    def test_fault_after_m_successes_then_recovers(self):
        self.make_key()
        self.ctl("POST", "faults", {"method": "POST", "path_regex": r"^/v1/servers$", "status": 503,
                                    "count": 1, "after": 1})
        self.make_server(name="one")
        status, _, out = self.api("POST", "/servers", {"name": "two", "server_type": "cx22", "image": "debian-12"})
        self.assert_error(status, out, 503, "unavailable")
        self.make_server(name="two")
        names = [s["name"] for s in self.ctl("GET", "state")["servers"]]
        self.assertEqual(names, ["one", "two"])
        log = [(r["method"], r["path"], r["status"]) for r in self.ctl("GET", "requests")["requests"]]
        self.assertEqual([e for e in log if e[1] == "/v1/servers"],
                         [("POST", "/v1/servers", 201), ("POST", "/v1/servers", 503), ("POST", "/v1/servers", 201)])
        self.assertEqual(self.ctl("GET", "faults")["faults"][0]["remaining"], 0)

    def test_fault_after_processing_leaves_the_server_behind(self):
        self.ctl("POST", "faults", {"method": "POST", "path_regex": r"^/v1/servers$", "status": 500,
                                    "when": "after"})
        status, _, out = self.api("POST", "/servers", {"name": "ghost", "server_type": "cx22", "image": "debian-12",
                                                       "labels": MANAGED})
        self.assert_error(status, out, 500, "service_error")
        status, _, out = self.api("GET", "/servers?label_selector=munero-trial%3Dalpha")
        self.assertEqual([s["name"] for s in out["servers"]], ["ghost"])

    def test_fault_matched_by_body_and_late_answer(self):
        self.ctl("POST", "faults", {"method": "POST", "path_regex": "^/v1/ssh_keys$", "body_regex": r'"name":\s*"b"',
                                    "status": 500})
        status, _, _ = self.api("POST", "/ssh_keys", {"name": "a", "public_key": ed25519_public_key("a")})
        self.assertEqual(status, 201)
        status, _, out = self.api("POST", "/ssh_keys", {"name": "b", "public_key": ed25519_public_key("b")})
        self.assert_error(status, out, 500, "service_error")
        self.ctl("POST", "faults", {"method": "POST", "path_regex": "^/v1/ssh_keys$", "delay": 0.5,
                                    "when": "after"})
        status, _, out = self.api("POST", "/ssh_keys", {"name": "c", "public_key": ed25519_public_key("c")})
        self.assertEqual((status, out["ssh_key"]["name"]), (201, "c"))
        self.assertEqual([k["name"] for k in self.ctl("GET", "state")["ssh_keys"]], ["a", "c"])

    def test_action_error_fault_fails_the_create_action(self):
        self.ctl("POST", "faults", {"kind": "action_error", "command": "create_server", "code": "no_space",
                                    "message": "no space left in location"})
        out = self.make_server(ssh_keys=())
        self.assertIsNotNone(out["root_password"])
        action = self.wait_action(out["action"]["id"])
        self.assertEqual(action["status"], "error")
        self.assertEqual(action["error"], {"code": "no_space", "message": "no space left in location"})
        status, _, out = self.api("GET", "/servers/%d" % out["server"]["id"])
        self.assertEqual(out["server"]["status"], "off")

    def test_firewall_apply_remove_and_label_selector(self):
        self.make_key()
        one = self.make_server(name="one")["server"]
        two = self.make_server(name="two", labels={"munero-managed": "true", "munero-trial": "beta"})["server"]
        fw = self.make_firewall()
        status, _, out = self.api("POST", "/firewalls/%d/actions/apply_to_resources" % fw["id"],
                                  {"apply_to": [{"type": "server", "server": {"id": one["id"]}}]})
        self.assertEqual(status, 201, out)
        self.assertEqual(out["actions"][0]["command"], "apply_firewall")
        self.assertEqual(self.wait_action(out["actions"][0]["id"], "/firewalls/actions/%d")["status"], "success")
        status, _, out = self.api("POST", "/firewalls/%d/actions/apply_to_resources" % fw["id"],
                                  {"apply_to": [{"type": "server", "server": {"id": one["id"]}}]})
        self.assert_error(status, out, 422, "firewall_already_applied")
        status, _, out = self.api("POST", "/firewalls/%d/actions/apply_to_resources" % fw["id"],
                                  {"apply_to": [{"type": "server", "server": {"id": 4242}}]})
        self.assert_error(status, out, 404, "firewall_resource_not_found")
        status, _, out = self.api("POST", "/firewalls/%d/actions/apply_to_resources" % fw["id"],
                                  {"apply_to": [{"type": "label_selector",
                                                 "label_selector": {"selector": "munero-trial=beta"}}]})
        self.assertEqual(status, 201, out)
        status, _, out = self.api("GET", "/firewalls/%d" % fw["id"])
        self.assertEqual(out["firewall"]["applied_to"], [
            {"type": "server", "server": {"id": one["id"]}},
            {"type": "label_selector", "label_selector": {"selector": "munero-trial=beta"},
             "applied_to_resources": [{"type": "server", "server": {"id": two["id"]}}]}])
        status, _, out = self.api("GET", "/servers/%d" % two["id"])
        self.assertEqual(out["server"]["public_net"]["firewalls"], [{"id": fw["id"], "status": "applied"}])
        status, _, out = self.api("POST", "/firewalls/%d/actions/remove_from_resources" % fw["id"],
                                  {"remove_from": [{"type": "server", "server": {"id": one["id"]}},
                                                   {"type": "label_selector",
                                                    "label_selector": {"selector": "munero-trial=beta"}}]})
        self.assertEqual(status, 201, out)
        self.assertEqual(len(out["actions"]), 2)
        status, _, out = self.api("POST", "/firewalls/%d/actions/set_rules" % fw["id"], {"rules": []})
        self.assertEqual(status, 201, out)
        status, _, out = self.api("GET", "/firewalls/%d" % fw["id"])
        self.assertEqual((out["firewall"]["applied_to"], out["firewall"]["rules"]), ([], []))
        status, _, _ = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assertEqual(status, 204)

    def test_firewall_stays_in_use_until_the_server_delete_finishes(self):
        self.make_key()
        fw = self.make_firewall()
        server = self.make_server(firewalls=[fw["id"]])["server"]
        status, _, out = self.api("DELETE", "/servers/%d" % server["id"])
        delete_action = out["action"]["id"]
        status, _, out = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assert_error(status, out, 422, "resource_in_use")
        self.assertEqual(out["error"]["message"], "firewall with ID %d is still in use" % fw["id"])
        self.assertEqual(self.wait_action(delete_action)["status"], "success")
        status, _, _ = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assertEqual(status, 204)

    def test_firewall_released_at_once_when_configured(self):
        self.ctl("POST", "config", {"release_on_delete": "immediate"})
        self.make_key()
        fw = self.make_firewall()
        server = self.make_server(firewalls=[fw["id"]])["server"]
        self.api("DELETE", "/servers/%d" % server["id"])
        status, _, _ = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assertEqual(status, 204)

    def test_label_selector_target_keeps_a_firewall_in_use(self):
        fw = self.make_firewall(apply_to=[{"type": "label_selector", "label_selector": {"selector": "nothing-has-this"}}])
        self.assertEqual(fw["applied_to"][0]["applied_to_resources"], [])
        status, _, out = self.api("DELETE", "/firewalls/%d" % fw["id"])
        self.assert_error(status, out, 422, "resource_in_use")

    def test_create_firewall_with_apply_to(self):
        self.make_key()
        one = self.make_server(name="one")["server"]
        status, _, out = self.api("POST", "/firewalls", {"name": "x", "apply_to": [
            {"type": "server", "server": {"id": 999}}]})
        self.assert_error(status, out, 422, "firewall_resource_not_found")
        self.assertEqual(self.ctl("GET", "state")["firewalls"], [])
        fw = self.make_firewall(apply_to=[{"type": "server", "server": {"id": one["id"]}}])
        self.assertEqual(fw["applied_to"], [{"type": "server", "server": {"id": one["id"]}}])

    def test_label_selectors_filter_like_hetzner(self):
        self.ctl("POST", "seed", {"servers": [
            {"name": "managed-a", "labels": {"munero-managed": "true", "munero-trial": "a"}},
            {"name": "managed-b", "labels": {"munero-managed": "true", "munero-trial": "b"}},
            {"name": "decoy", "labels": {"munero-trial": "a"}},
            {"name": "plain"},
        ]})
        cases = {
            "munero-managed=true": ["managed-a", "managed-b"],
            "munero-managed==true,munero-trial=a": ["managed-a"],
            "munero-trial": ["managed-a", "managed-b", "decoy"],
            "!munero-managed": ["decoy", "plain"],
            "munero-trial!=a": ["managed-b", "plain"],
            "munero-trial in (a,b),munero-managed": ["managed-a", "managed-b"],
            "munero-trial notin (a)": ["managed-b", "plain"],
        }
        for selector, names in cases.items():
            status, _, out = self.api("GET", "/servers?" + urllib.parse.urlencode({"label_selector": selector}))
            self.assertEqual(status, 200, out)
            self.assertEqual([s["name"] for s in out["servers"]], names, selector)

    def test_pagination_meta(self):
        self.ctl("POST", "seed", {"ssh_keys": [{"name": "k%02d" % i, "labels": MANAGED} for i in range(30)]})
        status, _, out = self.api("GET", "/ssh_keys?per_page=25")
        self.assertEqual(len(out["ssh_keys"]), 25)
        self.assertEqual(out["meta"]["pagination"], {"page": 1, "per_page": 25, "previous_page": None,
                                                     "next_page": 2, "last_page": 2, "total_entries": 30})
        status, _, out = self.api("GET", "/ssh_keys?page=2&per_page=25&sort=name:desc")
        self.assertEqual([k["name"] for k in out["ssh_keys"]], ["k04", "k03", "k02", "k01", "k00"])
        self.assertEqual(out["meta"]["pagination"]["next_page"], None)
        self.assertEqual(out["meta"]["pagination"]["previous_page"], 1)

    def test_ssh_key_fingerprint_matches_ssh_keygen(self):
        if not shutil.which("ssh-keygen"):
            self.skipTest("ssh-keygen not installed")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "id")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@x", "-f", path], check=True)
            with open(path + ".pub") as fh:
                public = fh.read().strip()
            expected = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", path + ".pub"], check=True,
                                      capture_output=True, text=True).stdout.split()[1]
        status, _, out = self.api("POST", "/ssh_keys", {"name": "real", "public_key": public})
        self.assertEqual(status, 201, out)
        self.assertEqual("MD5:" + out["ssh_key"]["fingerprint"], expected)
        status, _, out = self.api("GET", "/ssh_keys?fingerprint=" + out["ssh_key"]["fingerprint"])
        self.assertEqual([k["name"] for k in out["ssh_keys"]], ["real"])

    def test_catalogue_server_types_images_locations(self):
        status, _, out = self.api("GET", "/server_types?name=cpx41")
        self.assertEqual(status, 200, out)
        st = out["server_types"][0]
        self.assertEqual((st["cores"], st["memory"], st["disk"], st["cpu_type"]), (8, 16.0, 240, "shared"))
        status, _, out = self.api("GET", "/images?name=debian-12&type=system")
        self.assertEqual([i["name"] for i in out["images"]], ["debian-12"])
        status, _, out = self.api("GET", "/images?type=snapshot")
        self.assertEqual(out["images"], [])
        status, _, out = self.api("GET", "/locations")
        self.assertEqual([l["name"] for l in out["locations"]], ["fsn1", "nbg1", "hel1", "ash", "hil"])

    def test_other_read_and_update_endpoints(self):
        key = self.make_key()
        fw = self.make_firewall()
        created = self.make_server(firewalls=[fw["id"]])
        sid, aid = created["server"]["id"], created["action"]["id"]
        checks = [
            ("/servers?status=initializing&status=running&sort=name:desc&sort=id", "servers", 1),
            ("/servers/%d/actions" % sid, "actions", 3),
            ("/servers/%d/actions?status=running" % sid, "actions", None),
            ("/servers/actions?id=%d" % aid, "actions", 1),
            ("/servers/actions?sort=finished:desc&sort=command", "actions", 3),
            ("/firewalls/%d/actions" % fw["id"], "actions", 1),
            ("/firewalls/actions?id=%d" % created["next_actions"][1]["id"], "actions", 1),
            ("/datacenters", "datacenters", 5),
            ("/servers?page=3", "servers", 0),
        ]
        for path, key_name, count in checks:
            status, _, out = self.api("GET", path)
            self.assertEqual(status, 200, (path, out))
            if count is not None:
                self.assertEqual(len(out[key_name]), count, path)
        for path, key_name in (("/servers/%d/actions/%d" % (sid, aid), "action"),
                               ("/servers/actions/%d" % aid, "action"),
                               ("/firewalls/%d/actions/%d" % (fw["id"], created["next_actions"][1]["id"]), "action"),
                               ("/ssh_keys/%d" % key["id"], "ssh_key"),
                               ("/images/161547269", "image"), ("/locations/3", "location"),
                               ("/server_types/25", "server_type"), ("/datacenters/4", "datacenter")):
            status, _, out = self.api("GET", path)
            self.assertEqual(status, 200, (path, out))
            self.assertIn(key_name, out)
        status, _, out = self.api("GET", "/firewalls/%d/actions/%d" % (fw["id"], aid))
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("PUT", "/servers/%d" % sid, {"labels": {"munero-managed": "true"}, "name": "renamed"})
        self.assertEqual((status, out["server"]["name"], out["server"]["labels"]), (200, "renamed", {"munero-managed": "true"}))
        status, _, out = self.api("PUT", "/ssh_keys/%d" % key["id"], {"name": "key2", "labels": {}})
        self.assertEqual((status, out["ssh_key"]["name"]), (200, "key2"))
        status, _, out = self.api("PUT", "/firewalls/%d" % fw["id"], {"name": "fw2", "labels": {"a": "b"}})
        self.assertEqual((status, out["firewall"]["name"], out["firewall"]["labels"]), (200, "fw2", {"a": "b"}))

    def test_seeded_decoys_and_request_log(self):
        seeded = self.ctl("POST", "seed", {
            "firewalls": [{"name": "decoy-fw", "labels": {"munero-trial": "alpha"}}],
            "servers": [{"name": "decoy", "labels": {"munero-trial": "alpha"}, "firewalls": ["decoy-fw"]}],
        })
        self.assertEqual(seeded["servers"][0]["status"], "running")
        self.assertEqual(self.ctl("GET", "requests")["requests"], [])
        status, _, out = self.api("GET", "/servers?label_selector=munero-managed%3Dtrue")
        self.assertEqual(out["servers"], [])
        status, _, out = self.api("DELETE", "/firewalls/%d" % seeded["firewalls"][0]["id"])
        self.assert_error(status, out, 422, "resource_in_use")
        log = self.ctl("GET", "requests")["requests"]
        self.assertEqual([(r["method"], r["path"]) for r in log],
                         [("GET", "/v1/servers"), ("DELETE", "/v1/firewalls/%d" % seeded["firewalls"][0]["id"])])
        self.assertEqual(log[0]["query"], {"label_selector": ["munero-managed=true"]})

    # -- DNS: zones and RRSets --
    def seed_zones(self):
        return self.ctl("POST", "seed", {"zones": [
            {"name": "example.com", "labels": {"munero-managed": "true", "munero-trial": "alpha"},
             "rrsets": [{"name": "www", "type": "A", "records": [{"value": "198.51.100.1"}],
                         "labels": {"munero-trial": "alpha"}}]},
            {"name": "decoy.org", "labels": {"munero-trial": "beta"}, "ttl": 7200, "registrar": "other"},
        ]})

    def test_dns_zones_list_get_and_filter(self):
        seeded = self.seed_zones()
        self.assertEqual([z["name"] for z in seeded["zones"]], ["example.com", "decoy.org"])
        self.assertEqual([r["id"] for r in seeded["rrsets"]], ["@/SOA", "@/NS", "www/A", "@/SOA", "@/NS"])
        zid = seeded["zones"][0]["id"]
        status, _, out = self.api("GET", "/zones")
        self.assertEqual(status, 200, out)
        self.assertEqual([z["name"] for z in out["zones"]], ["example.com", "decoy.org"])
        self.assertEqual(out["meta"]["pagination"]["total_entries"], 2)
        zone = out["zones"][0]
        self.assertEqual((zone["mode"], zone["status"], zone["ttl"], zone["registrar"], zone["record_count"]),
                         ("primary", "ok", 3600, "hetzner", 5))  # SOA + 3 NS + www/A
        self.assertEqual(zone["protection"], {"delete": False})
        self.assertEqual(zone["authoritative_nameservers"]["assigned"], fake.ZONE_NAMESERVERS)
        self.assertEqual((out["zones"][1]["ttl"], out["zones"][1]["registrar"]), (7200, "other"))
        for query, names in (("name=decoy.org", ["decoy.org"]), ("name=decoy", []),
                             ("mode=primary&sort=name", ["decoy.org", "example.com"]),
                             ("mode=secondary", []),
                             ("label_selector=munero-managed%3Dtrue", ["example.com"]),
                             ("label_selector=munero-trial%20in%20(alpha,beta)&sort=id:desc",
                              ["decoy.org", "example.com"]),
                             ("per_page=1&page=2", ["decoy.org"])):
            status, _, out = self.api("GET", "/zones?" + query)
            self.assertEqual(status, 200, (query, out))
            self.assertEqual([z["name"] for z in out["zones"]], names, query)
        self.assertEqual(out["meta"]["pagination"], {"page": 2, "per_page": 1, "previous_page": 1, "next_page": None,
                                                     "last_page": 2, "total_entries": 2})
        for ref in (str(zid), "example.com"):
            status, _, out = self.api("GET", "/zones/" + ref)
            self.assertEqual((status, out["zone"]["id"], out["zone"]["name"]), (200, zid, "example.com"))
        for ref in ("999999", "nope.example"):
            status, _, out = self.api("GET", "/zones/" + ref)
            self.assert_error(status, out, 404, "not_found")
            status, _, out = self.api("GET", "/zones/%s/rrsets" % ref)
            self.assert_error(status, out, 404, "not_found")

    def test_dns_rrset_create_get_list_delete(self):
        zid = self.seed_zones()["zones"][0]["id"]
        body = {"name": "_acme-challenge", "type": "TXT", "ttl": 60, "labels": MANAGED,
                "records": [{"value": '"token-1"', "comment": "ACME"}, {"value": '"token-2"'}]}
        status, _, out = self.api("POST", "/zones/example.com/rrsets", body)
        self.assertEqual(status, 201, out)
        self.assertEqual(out["rrset"], {"id": "_acme-challenge/TXT", "name": "_acme-challenge", "type": "TXT",
                                        "ttl": 60, "labels": MANAGED, "protection": {"change": False},
                                        "records": [{"value": '"token-1"', "comment": "ACME"},
                                                    {"value": '"token-2"', "comment": ""}],
                                        "zone": zid})
        self.assertEqual((out["action"]["command"], out["action"]["resources"]),
                         ("create_rrset", [{"id": zid, "type": "zone"}]))
        self.assertEqual(self.wait_action(out["action"]["id"])["status"], "success")
        status, _, out = self.api("POST", "/zones/%d/rrsets" % zid, dict(body, ttl=None))
        self.assert_error(status, out, 409, "uniqueness_error")
        status, _, out = self.api("POST", "/zones/%d/rrsets" % zid,
                                  {"name": "@", "type": "AAAA", "records": [{"value": "2001:db8::1"}]})
        self.assertEqual((status, out["rrset"]["id"], out["rrset"]["ttl"]), (201, "@/AAAA", None))
        status, _, out = self.api("GET", "/zones/%d" % zid)
        self.assertEqual(out["zone"]["record_count"], 8)

        status, _, out = self.api("GET", "/zones/example.com/rrsets/_acme-challenge/TXT")
        self.assertEqual((status, out["rrset"]["id"]), (200, "_acme-challenge/TXT"))
        status, _, out = self.api("GET", "/zones/%d/rrsets/@/AAAA" % zid)
        self.assertEqual((status, out["rrset"]["records"]), (200, [{"value": "2001:db8::1", "comment": ""}]))
        status, _, out = self.api("GET", "/zones/example.com/rrsets/_acme-challenge/A")
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("GET", "/zones/decoy.org/rrsets/www/A")
        self.assert_error(status, out, 404, "not_found")

        for query, ids in (("", ["@/AAAA", "@/NS", "@/SOA", "_acme-challenge/TXT", "www/A"]),
                           ("type=A&type=AAAA", ["@/AAAA", "www/A"]),
                           ("name=%40&sort=id:desc", ["@/SOA", "@/NS", "@/AAAA"]),
                           ("name=www", ["www/A"]),
                           ("label_selector=munero-trial%3Dalpha", ["_acme-challenge/TXT", "www/A"]),
                           ("label_selector=munero-managed&type=TXT", ["_acme-challenge/TXT"]),
                           ("sort=name:desc&sort=id&per_page=2", ["www/A", "_acme-challenge/TXT"])):
            status, _, out = self.api("GET", "/zones/example.com/rrsets?" + query)
            self.assertEqual(status, 200, (query, out))
            self.assertEqual([r["id"] for r in out["rrsets"]], ids, query)
        self.assertEqual(out["meta"]["pagination"]["total_entries"], 5)
        self.assertEqual(out["meta"]["pagination"]["next_page"], 2)

        relabelled = dict(MANAGED, **{"munero-expires": "1900000000"})
        status, _, out = self.api("PUT", "/zones/example.com/rrsets/_acme-challenge/TXT", {"labels": relabelled})
        self.assertEqual((status, out["rrset"]["labels"]), (200, relabelled), out)
        status, _, out = self.api("GET", "/zones/example.com/rrsets/_acme-challenge/TXT")
        self.assertEqual(out["rrset"]["labels"], relabelled)

        status, _, out = self.api("DELETE", "/zones/example.com/rrsets/_acme-challenge/TXT")
        self.assertEqual(status, 201, out)
        self.assertEqual((out["action"]["command"], out["action"]["resources"]),
                         ("delete_rrset", [{"id": zid, "type": "zone"}]))
        status, _, out = self.api("GET", "/zones/example.com/rrsets/_acme-challenge/TXT")
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("DELETE", "/zones/example.com/rrsets/_acme-challenge/TXT")
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("GET", "/zones/%d/actions" % zid)
        self.assertEqual([a["command"] for a in out["actions"]], ["create_rrset", "create_rrset", "delete_rrset"])
        status, _, out = self.api("GET", "/zones/actions/%d" % out["actions"][2]["id"])
        self.assertEqual((status, out["action"]["command"]), (200, "delete_rrset"))

        state = self.ctl("GET", "state")
        self.assertEqual([(z["name"], z["record_count"]) for z in state["zones"]], [("example.com", 6), ("decoy.org", 4)])
        self.assertEqual([(r["zone_name"], r["id"]) for r in state["rrsets"]],
                         [("example.com", "@/SOA"), ("example.com", "@/NS"), ("example.com", "www/A"),
                          ("example.com", "@/AAAA"), ("decoy.org", "@/SOA"), ("decoy.org", "@/NS")])
        self.ctl("POST", "reset", {})
        state = self.ctl("GET", "state")
        self.assertEqual((state["zones"], state["rrsets"]), ([], []))

    def test_dns_rrset_bad_input_is_invalid_input(self):
        """Inputs the spec's schema allows but the API refuses: the fake answers 422 invalid_input."""
        self.seed_zones()
        a = lambda value: [{"value": value}]
        cases = [
            {"name": "WWW", "type": "A", "records": a("198.51.100.2")},
            {"name": "www.", "type": "A", "records": a("198.51.100.2")},
            {"name": "www.example.com", "type": "A", "records": a("198.51.100.2")},
            {"name": "example.com", "type": "A", "records": a("198.51.100.2")},
            {"name": "", "type": "A", "records": a("198.51.100.2")},
            {"name": "bad name", "type": "A", "records": a("198.51.100.2")},
            {"name": "x", "type": "A", "records": []},
            {"name": "x", "type": "A", "records": a("198.51.100.2") + a("198.51.100.2")},
            {"name": "x", "type": "A", "records": a("198.51.100.256")},
            {"name": "x", "type": "A", "records": a("2001:db8::1")},
            {"name": "x", "type": "AAAA", "records": a("198.51.100.2")},
            {"name": "x", "type": "AAAA", "records": a("2001:db8::g")},
        ]
        for body in cases:
            status, _, out = self.api("POST", "/zones/example.com/rrsets", body)
            self.assert_error(status, out, 422, "invalid_input")
            self.assertIn("fields", out["error"]["details"], body)
        status, _, out = self.api("GET", "/zones/example.com/rrsets?label_selector=a%3Db%3Dc")
        self.assert_error(status, out, 422, "invalid_input")
        self.assertEqual(len(self.ctl("GET", "state")["rrsets"]), 5)

    def test_dns_rrset_requests_the_spec_refuses(self):
        """Through Prism these never reach the fake (422 from Prism); directly the fake refuses them."""
        self.seed_zones()
        cases = [
            {"name": "x", "type": "SPF", "records": [{"value": "v=spf1 -all"}]},
            {"name": "x", "type": "A", "ttl": 59, "records": [{"value": "198.51.100.2"}]},
            {"name": "x", "type": "A"},
            {"name": "x", "type": "A", "records": [{"value": "198.51.100.2"}], "labels": {"k": "a:b"}},
        ]
        for body in cases:
            status, _, out = self.api("POST", "/zones/example.com/rrsets", body)
            self.assertEqual(status, 422, (body, out))
            if self.via_prism:
                self.assertIn("UNPROCESSABLE_ENTITY", out["type"])
            else:
                self.assertEqual(out["error"]["code"], "invalid_input")
        for path in ("/zones/example.com/rrsets/www/SPF", "/zones/example.com/rrsets?type=A&type=SPF",
                     "/zones?mode=tertiary"):
            status, _, out = self.api("GET", path)
            self.assertEqual(status, 422, (path, out))  # a value outside the spec's enum
        self.assertEqual(len(self.ctl("GET", "state")["rrsets"]), 5)
        self.expect_violations = True

    def test_dns_rrset_pagination_and_bad_seed(self):
        self.ctl("POST", "seed", {"zones": [{"name": "example.com", "rrsets": [
            {"name": "h%02d" % i, "type": "A", "records": [{"value": "198.51.100.%d" % (i + 1)}]} for i in range(30)]}]})
        status, _, out = self.api("GET", "/zones/example.com/rrsets?type=A&sort=name")
        self.assertEqual(len(out["rrsets"]), 25)
        self.assertEqual(out["meta"]["pagination"], {"page": 1, "per_page": 25, "previous_page": None,
                                                     "next_page": 2, "last_page": 2, "total_entries": 30})
        status, _, out = self.api("GET", "/zones/example.com/rrsets?type=A&sort=name&page=2")
        self.assertEqual([r["name"] for r in out["rrsets"]], ["h25", "h26", "h27", "h28", "h29"])
        for bad in ({"name": "example.com"}, {"name": "Upper.org"}, {"name": "dot.org."},
                    {"name": "ok.org", "rrsets": [{"name": "a", "type": "A", "records": [{"value": "nope"}]}]}):
            status, _, out = request(self.control + "/__fake/seed", "POST", {"zones": [bad]}, token=None)
            self.assertEqual((status, out["error"]["code"]),
                             (422, "uniqueness_error" if bad["name"] == "example.com" else "invalid_input"), bad)
        self.assertEqual([z["name"] for z in self.ctl("GET", "state")["zones"]], ["example.com"])

    # -- snapshots (images of type snapshot), volumes, primary IPs --
    def test_snapshot_create_list_boot_from_and_delete(self):
        self.make_key()
        server = self.make_server()["server"]
        status, _, out = self.api("POST", "/servers/%d/actions/create_image" % server["id"],
                                  {"type": "snapshot", "description": "before onboarding", "labels": MANAGED})
        self.assertEqual(status, 201, out)
        image = out["image"]
        self.assertEqual((image["type"], image["status"], image["description"]), ("snapshot", "creating", "before onboarding"))
        self.assertEqual(image["created_from"], {"id": server["id"], "name": "alpha"})
        self.assertEqual(self.wait_action(out["action"]["id"])["status"], "success")
        status, _, out = self.api("GET", "/images?type=snapshot&label_selector=munero-trial%3Dalpha")
        self.assertEqual([(i["id"], i["status"]) for i in out["images"]], [(image["id"], "available")])
        status, _, out = self.api("GET", "/images?type=system")
        self.assertNotIn(image["id"], [i["id"] for i in out["images"]])
        status, _, out = self.api("DELETE", "/servers/%d" % server["id"])
        self.assertEqual(status, 200, out)
        body = {"name": "alpha", "server_type": "cpx41", "image": str(image["id"]), "location": "fsn1",
                "ssh_keys": ["alpha-key"], "labels": MANAGED, "start_after_create": True}
        status, _, out = self.api("POST", "/servers", body)
        self.assertEqual(status, 201, out)
        self.assertEqual(out["server"]["image"]["id"], image["id"])
        status, _, out = self.api("PUT", "/images/%d" % image["id"], {"labels": dict(MANAGED, extra="1")})
        self.assertEqual((status, out["image"]["labels"]["extra"]), (200, "1"))
        status, _, out = self.api("DELETE", "/images/%d" % image["id"])
        self.assertEqual(status, 204, out)
        status, _, out = self.api("GET", "/images/%d" % image["id"])
        self.assert_error(status, out, 404, "not_found")
        status, _, out = self.api("POST", "/servers/999999/actions/create_image", {"type": "snapshot"})
        self.assert_error(status, out, 404, "not_found")

    def test_volumes_and_primary_ips_list_by_label_and_delete_when_free(self):
        self.make_key()
        server = self.make_server()["server"]
        seeded = self.ctl("POST", "seed", {
            "volumes": [{"name": "vol-a", "labels": MANAGED, "server": server["id"]}, {"name": "vol-b", "labels": {}}],
            "primary_ips": [{"name": "ip-a", "labels": MANAGED, "assignee_id": server["id"]}, {"name": "ip-b"}]})
        vol, ip = seeded["volumes"][0], seeded["primary_ips"][0]
        status, _, out = self.api("GET", "/volumes?label_selector=munero-managed%3Dtrue")
        self.assertEqual([v["name"] for v in out["volumes"]], ["vol-a"])
        status, _, out = self.api("GET", "/primary_ips?label_selector=munero-managed%3Dtrue")
        self.assertEqual([i["name"] for i in out["primary_ips"]], ["ip-a"])
        status, _, out = self.api("DELETE", "/volumes/%d" % vol["id"])
        self.assertEqual(status, 422, out)
        self.expect_violations = self.via_prism  # a 422 the spec may describe differently
        status, _, out = self.api("DELETE", "/servers/%d" % server["id"])
        self.assertEqual(status, 200, out)
        for path in ("/volumes/%d" % vol["id"], "/primary_ips/%d" % ip["id"]):
            status, _, out = self.api("DELETE", path)
            self.assertEqual(status, 204, (path, out))
            status, _, out = self.api("GET", path)
            self.assert_error(status, out, 404, "not_found")


class DirectTests(ApiBehaviour, unittest.TestCase):
    """The fake alone, as the CLI sees it when the spec is absent."""

    launch_args = ("--quiet",)

    def test_actions_list_needs_ids(self):
        status, _, out = self.api("GET", "/actions")
        self.assert_error(status, out, 422, "invalid_input")

    def test_api_is_not_served_at_the_root_by_the_launcher(self):
        status, _, out = request(self.control + "/servers")
        self.assert_error(status, out, 404, "not_found")


class ContractTests(ApiBehaviour, unittest.TestCase):
    """Everything through Prism: requests and responses checked against the published spec."""

    launch_args = ("--prism", "--quiet")
    via_prism = True

    @classmethod
    def setUpClass(cls):
        spec = os.environ.get("MUNERO_HCLOUD_SPEC") or launch.DEFAULT_SPEC
        if not os.path.isfile(spec):
            raise unittest.SkipTest("contract check skipped: spec not found at %s" % spec)
        super().setUpClass()
        assert cls.info["prism"], cls.info

    def test_prism_refuses_an_invalid_request_before_the_fake_sees_it(self):
        status, _, out = self.api("POST", "/servers", {"name": "x", "server_type": 41})
        self.assertEqual(status, 422, out)
        self.assertIn("UNPROCESSABLE_ENTITY", out["type"])
        messages = " ".join(v["message"] for v in out["validation"])
        self.assertIn("image", messages)
        self.assertEqual(self.ctl("GET", "requests")["requests"], [])
        logged = json.loads(self.violation_lines()[-1])
        self.assertEqual((logged["method"], logged["path"], logged["status"]), ("POST", "/v1/servers", 422))
        self.assertIn("required property 'image'", json.dumps(logged["prism"]["validation"]))
        status, _, out = self.api("GET", "/actions")  # the id parameter is required by the spec
        self.assertEqual(status, 422, out)
        self.expect_violations = True

    def test_prism_flags_a_response_that_breaks_the_spec(self):
        self.ctl("POST", "faults", {"method": "GET", "path_regex": r"^/v1/servers/\d+$", "status": 200,
                                    "json_body": {"server": {"id": "not-a-number"}}})
        status, headers, out = self.api("GET", "/servers/1")
        self.assertEqual(status, 500, out)
        self.assertIn("VIOLATIONS", out["type"])
        self.assertIn("sl-violations", {k.lower() for k in headers.keys()})
        self.assertEqual(len(self.ctl("GET", "requests")["requests"]), 1)
        logged = json.loads(self.violation_lines()[-1])
        self.assertEqual((logged["method"], logged["status"]), ("GET", 500))
        self.assertIn("response", json.dumps(logged["prism"]["validation"]))
        self.expect_violations = True

    def test_error_bodies_are_checked_too(self):
        self.ctl("POST", "faults", {"method": "GET", "path_regex": r"^/v1/locations$", "status": 503,
                                    "raw_body": "<html>bad gateway</html>"})
        status, _, out = self.api("GET", "/locations")
        self.assertEqual(status, 500, out)
        self.assertIn("VIOLATIONS", out["type"])
        self.expect_violations = True

    def test_client_that_drops_v1_gets_404(self):
        status, _, out = request(self.base.rsplit("/v1", 1)[0] + "/servers")
        self.assertEqual(status, 404, out)
        self.expect_violations = True


class UnitTests(unittest.TestCase):
    def test_selector_parser(self):
        terms = fake.parse_selector("a=b,c,!d,e!=f,g in (h,i),j notin (k)")
        self.assertEqual(terms, [("=", "a", "b"), ("exists", "c", None), ("absent", "d", None), ("!=", "e", "f"),
                                 ("in", "g", ["h", "i"]), ("notin", "j", ["k"])])
        self.assertTrue(fake.selector_matches(terms, {"a": "b", "c": "", "g": "i"}))
        self.assertFalse(fake.selector_matches(terms, {"a": "b", "c": "", "g": "i", "e": "f"}))
        with self.assertRaises(fake.ApiError):
            fake.parse_selector("a=b,,c")

    def test_hostnames(self):
        for good in ("alpha", "alpha-1.example.com", "A1"):
            self.assertTrue(fake.valid_hostname(good), good)
        for bad in ("", "-a", "a-", "a_b", "a..b", "x" * 64, "a b"):
            self.assertFalse(fake.valid_hostname(bad), bad)


class LauncherTests(unittest.TestCase):
    def test_spec_absent_runs_the_fake_alone_and_says_so(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "launch.py"), "--prism", "--exit-on-stdin-eof",
                                 "--spec", "/nonexistent/hcloud-openapi.json"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        info = json.loads(proc.stdout.readline())
        self.assertFalse(info["prism"])
        self.assertEqual(info["contract_check"], "skipped: spec not found at /nonexistent/hcloud-openapi.json")
        self.assertEqual(request(info["endpoint"] + "/locations")[0], 200)
        proc.stdin.close()
        self.assertEqual(proc.wait(20), 0)
        self.assertIn(b"contract check skipped: spec not found at /nonexistent", proc.stderr.read())
        proc.stderr.close()
        proc.stdout.close()
        self.assertFalse(self._answers(info))

    def test_sigterm_stops_the_fake(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "launch.py"), "--quiet"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        info = json.loads(proc.stdout.readline())
        self.assertTrue(self._answers(info))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)
        proc.stdout.close()
        self.assertFalse(self._answers(info))

    def test_parent_death_stops_the_fake(self):
        parent = subprocess.Popen(["bash", "-c", 'python3 "$0" --quiet & wait', os.path.join(HERE, "launch.py")],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        info = json.loads(parent.stdout.readline())
        try:
            self.assertTrue(self._answers(info))
            parent.kill()
            parent.wait(10)
            for _ in range(100):  # the launcher notices within a fraction of a second; allow a slow machine
                if not self._answers(info):
                    break
                time.sleep(0.2)
            self.assertFalse(self._answers(info))
        finally:
            parent.stdout.close()
            try:  # never leave a launcher behind, whatever happened above
                os.kill(info["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass

    def test_latency_flag_sets_the_start_up_latency(self):
        launched = Launched("--quiet", "--latency-ms", "300")
        try:
            control = launched.info["control"] + "/__fake/"
            self.assertEqual(request(control + "config", token=None)[2]["latency_ms"], 300)
            request(control + "reset", "POST", {}, token=None)  # the flag is the start-up config
            t0 = time.monotonic()
            self.assertEqual(request(launched.info["endpoint"] + "/locations")[0], 200)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        finally:
            launched.close()

    @staticmethod
    def _answers(info):
        try:
            with urllib.request.urlopen(info["control"] + "/__fake/health", timeout=2):
                return True
        except OSError:
            return False


def main():
    result = unittest.main(exit=False, verbosity=2).result
    failed = len({id(t) for t, _ in result.failures + result.errors} | {id(t) for t in result.unexpectedSuccesses})
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
