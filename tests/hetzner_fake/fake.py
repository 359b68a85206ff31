#!/usr/bin/env python3
"""Stateful fake of the Hetzner Cloud API for integration tests.

Python 3 standard library only. Serves the API under /v1 and at the root (so a
proxy that forwards to http://HOST:PORT/v1 and a client that talks to
http://HOST:PORT/v1 directly both work), plus a control API under /__fake/ that
tests use to inject faults, seed decoys, inspect state and read the request log.

Responses follow the published OpenAPI description of the API
(../shared/specs/hcloud-openapi.json); see README.md beside this file.

Usage: python3 fake.py [--host 127.0.0.1] [--port 0] [--action-polls 2]
                       [--action-seconds 30] [--starting-polls 1] [--rate-limit 3600]
Prints "LISTENING <port>" on stdout once it accepts connections.
"""

import argparse
import base64
import binascii
import copy
import datetime as dt
import hashlib
import ipaddress
import json
import math
import re
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MAX_PER_PAGE = 50
USER_DATA_LIMIT = 32 * 1024
IPV4_NET = ipaddress.ip_network("203.0.113.0/24")  # TEST-NET-3 (RFC 5737)

# ---------------------------------------------------------------------------
# Static catalogue: locations, datacenters, server types, images.
# ---------------------------------------------------------------------------

LOCATIONS = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE",
     "city": "Falkenstein", "latitude": 50.47612, "longitude": 12.370071, "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE",
     "city": "Nuremberg", "latitude": 49.452102, "longitude": 11.076665, "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI",
     "city": "Helsinki", "latitude": 60.169855, "longitude": 24.938379, "network_zone": "eu-central"},
    {"id": 4, "name": "ash", "description": "Ashburn, VA", "country": "US",
     "city": "Ashburn, VA", "latitude": 39.045821, "longitude": -77.487073, "network_zone": "us-east"},
    {"id": 5, "name": "hil", "description": "Hillsboro, OR", "country": "US",
     "city": "Hillsboro, OR", "latitude": 45.54222, "longitude": -122.951924, "network_zone": "us-west"},
]

DATACENTERS = {
    "fsn1": {"id": 4, "name": "fsn1-dc14", "description": "Falkenstein 1 virtual DC 14"},
    "nbg1": {"id": 2, "name": "nbg1-dc3", "description": "Nuremberg 1 virtual DC 3"},
    "hel1": {"id": 3, "name": "hel1-dc2", "description": "Helsinki 1 virtual DC 2"},
    "ash": {"id": 5, "name": "ash-dc1", "description": "Ashburn virtual DC 1"},
    "hil": {"id": 6, "name": "hil-dc1", "description": "Hillsboro virtual DC 1"},
}

# name, id, cores, memory GB, disk GB, cpu_type, category, monthly net EUR, hourly net EUR
_SERVER_TYPES = [
    ("cx22", 104, 2, 4.0, 40, "shared", "cost_optimized", "3.7900", "0.0060"),
    ("cx32", 105, 4, 8.0, 80, "shared", "cost_optimized", "6.8000", "0.0110"),
    ("cpx11", 22, 2, 2.0, 40, "shared", "regular_purpose", "4.3500", "0.0070"),
    ("cpx21", 23, 3, 4.0, 80, "shared", "regular_purpose", "7.5500", "0.0121"),
    ("cpx31", 24, 4, 8.0, 160, "shared", "regular_purpose", "13.6000", "0.0218"),
    ("cpx41", 25, 8, 16.0, 240, "shared", "regular_purpose", "25.2000", "0.0403"),
    ("cpx51", 26, 16, 32.0, 360, "shared", "regular_purpose", "54.9000", "0.0880"),
    ("ccx13", 96, 2, 8.0, 80, "dedicated", "general_purpose", "12.4900", "0.0200"),
    ("ccx23", 97, 4, 16.0, 160, "dedicated", "general_purpose", "24.4900", "0.0392"),
    ("ccx33", 98, 8, 32.0, 240, "dedicated", "general_purpose", "48.4900", "0.0777"),
]


def _gross(net):
    return "%.10f" % (float(net) * 1.19)


def _server_type(row):
    name, tid, cores, mem, disk, cpu, cat, monthly, hourly = row
    return {
        "id": tid,
        "name": name,
        "description": name.upper(),
        "category": cat,
        "cores": cores,
        "memory": mem,
        "disk": disk,
        "deprecated": False,
        "deprecation": None,
        "prices": [
            {
                "location": loc["name"],
                "price_hourly": {"net": "%.10f" % float(hourly), "gross": _gross(hourly)},
                "price_monthly": {"net": "%.10f" % float(monthly), "gross": _gross(monthly)},
                "included_traffic": 21990232555520 if loc["network_zone"] == "eu-central" else 1099511627776,
                "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"},
            }
            for loc in LOCATIONS
        ],
        "storage_type": "local",
        "cpu_type": cpu,
        "architecture": "x86",
        "locations": [{"id": loc["id"], "name": loc["name"], "deprecation": None} for loc in LOCATIONS],
    }


SERVER_TYPES = [_server_type(r) for r in _SERVER_TYPES]

# Primary IPv4: hourly and monthly net EUR (IPv6 is free).
_IPV4_PRICE = ("0.0008", "0.5000")


def _amount(net):
    return {"net": "%.10f" % float(net), "gross": _gross(net)}


def pricing():
    """GET /pricing, shaped as the published spec's ListPricesResponse."""
    hourly, monthly = _IPV4_PRICE
    ip = lambda h, m: [{"location": loc["name"], "price_hourly": _amount(h), "price_monthly": _amount(m)}
                       for loc in LOCATIONS]
    return {"pricing": {
        "currency": "EUR",
        "vat_rate": "19.00",
        "image": {"price_per_gb_month": _amount("0.0110")},
        "floating_ip": {"price_monthly": _amount("3.0000")},
        "floating_ips": [{"type": t, "prices": [{"location": loc["name"], "price_monthly": _amount(m)} for loc in LOCATIONS]}
                         for t, m in (("ipv4", "3.0000"), ("ipv6", "3.0000"))],
        "primary_ips": [{"type": "ipv4", "prices": ip(hourly, monthly)}, {"type": "ipv6", "prices": ip("0", "0")}],
        "server_backup": {"percentage": "20.00"},
        "server_types": [{"id": t["id"], "name": t["name"], "prices": copy.deepcopy(t["prices"])} for t in SERVER_TYPES],
        "load_balancer_types": [],
        "volume": {"price_per_gb_month": _amount("0.0440")},
    }}

IMAGES = [
    {"id": 161547269, "type": "system", "status": "available", "name": "ubuntu-24.04",
     "description": "Ubuntu 24.04", "image_size": None, "disk_size": 5, "created": "2024-04-25T13:55:42+00:00",
     "created_from": None, "bound_to": None, "os_flavor": "ubuntu", "os_version": "24.04",
     "rapid_deploy": True, "protection": {"delete": False}, "deprecated": None, "deleted": None,
     "labels": {}, "architecture": "x86"},
    {"id": 67794396, "type": "system", "status": "available", "name": "ubuntu-22.04",
     "description": "Ubuntu 22.04", "image_size": None, "disk_size": 5, "created": "2022-04-21T13:32:38+00:00",
     "created_from": None, "bound_to": None, "os_flavor": "ubuntu", "os_version": "22.04",
     "rapid_deploy": True, "protection": {"delete": False}, "deprecated": None, "deleted": None,
     "labels": {}, "architecture": "x86"},
    {"id": 114690387, "type": "system", "status": "available", "name": "debian-12",
     "description": "Debian 12", "image_size": None, "disk_size": 5, "created": "2023-06-13T06:00:02+00:00",
     "created_from": None, "bound_to": None, "os_flavor": "debian", "os_version": "12",
     "rapid_deploy": True, "protection": {"delete": False}, "deprecated": None, "deleted": None,
     "labels": {}, "architecture": "x86"},
]

# DNS (zones and RRSets): the names Hetzner assigns to every primary Zone, and the RRSet types.
ZONE_NAMESERVERS = ["hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de."]
RRSET_TYPES = ("A", "AAAA", "CAA", "CNAME", "DS", "HINFO", "HTTPS", "MX", "NS", "PTR", "RP", "SOA",
               "SRV", "SVCB", "TLSA", "TXT")
TTL_MIN, TTL_MAX = 60, 2147483647
ZONE_REGISTRARS = ("hetzner", "other", "unknown")
DELEGATION_STATUSES = ("invalid", "lame", "partially-valid", "unknown", "unregistered", "valid")
RR_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$")
ZONE_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self):
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid_input(field, message):
    return ApiError(422, "invalid_input", "invalid input in field '%s'" % field,
                    {"fields": [{"name": field, "messages": [message]}]})


def not_found(kind):
    return ApiError(404, "not_found", "%s not found" % kind)


def uniqueness_error(field, message=None):
    return ApiError(409, "uniqueness_error", message or "%s is already used" % field, {"fields": [{"name": field}]})


def now_iso(t=None):
    t = time.time() if t is None else t
    return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).isoformat()


HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$")
LABEL_VALUE = re.compile(r"^(|[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def valid_hostname(name):
    if not isinstance(name, str) or not name or len(name) > 253:
        return False
    return all(HOSTNAME_LABEL.match(part) for part in name.split("."))


def check_labels(labels, field="labels"):
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise invalid_input(field, "labels must be an object")
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
            raise invalid_input(field, "invalid label key prefix %r" % key)
        if not LABEL_NAME.match(name):
            raise invalid_input(field, "invalid label key %r" % key)
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise invalid_input(field, "invalid label value %r for key %r" % (value, key))
    return dict(labels)


# Label selectors: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b); comma = AND.
_SEL_IN = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_SEL_EQ = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_SEL_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def parse_selector(selector):
    terms, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    out = []
    for term in terms:
        if not term.strip():
            raise invalid_input("label_selector", "empty term in label selector %r" % selector)
        m = _SEL_IN.match(term)
        if m:
            values = [v.strip() for v in m.group(3).split(",")]
            out.append((m.group(2), m.group(1), values))
            continue
        m = _SEL_EQ.match(term)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            out.append((op, m.group(1), m.group(3)))
            continue
        m = _SEL_EXISTS.match(term)
        if m:
            out.append(("absent" if m.group(1) else "exists", m.group(2), None))
            continue
        raise invalid_input("label_selector", "invalid label selector %r" % selector)
    return out


def selector_matches(terms, labels):
    for op, key, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and key in labels and labels[key] == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "absent" and key in labels:
            return False
        if op == "in" and labels.get(key) not in value:
            return False
        if op == "notin" and key in labels and labels[key] in value:
            return False
    return True


def ssh_fingerprint(public_key):
    """MD5 fingerprint of the key blob, colon-separated lower-case hex (as Hetzner shows it)."""
    if not isinstance(public_key, str):
        raise invalid_input("public_key", "public key must be a string")
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise invalid_input("public_key", "invalid public key")
    try:
        blob = base64.b64decode(parts[1].encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid_input("public_key", "invalid public key")
    if len(blob) < 4:
        raise invalid_input("public_key", "invalid public key")
    n = int.from_bytes(blob[:4], "big")
    if blob[4:4 + n].decode("ascii", "replace") != parts[0]:
        raise invalid_input("public_key", "invalid public key: type does not match key data")
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2)), parts[0] + " " + parts[1]


def int_param(query, name, default):
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise invalid_input(name, "%s must be an integer" % name)


def paginate(items, query, key):
    page = int_param(query, "page", 1)
    per_page = int_param(query, "per_page", 25)
    if page < 1:
        raise invalid_input("page", "page must be >= 1")
    if per_page < 1:
        raise invalid_input("per_page", "per_page must be >= 1")
    per_page = min(per_page, MAX_PER_PAGE)
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    return {
        key: chunk,
        "meta": {"pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": total,
        }},
    }


def sort_items(items, query, allowed):
    sorts = query.get("sort") or ["id"]
    for spec in reversed(sorts):
        field, _, direction = spec.partition(":")
        if field not in allowed or direction not in ("", "asc", "desc"):
            raise invalid_input("sort", "invalid sort %r" % spec)
        items.sort(key=lambda x: (x[field] is None, x[field] if x[field] is not None else ""),
                   reverse=direction == "desc")
    return items


def require_body_object(body):
    if not isinstance(body, dict):
        raise ApiError(400, "json_error", "request body must be a JSON object")
    return body


def require_field(body, name, kind):
    if name not in body or body[name] is None:
        raise invalid_input(name, "%s is required" % name)
    if not isinstance(body[name], kind):
        raise invalid_input(name, "%s has the wrong type" % name)
    return body[name]


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


class State:
    def __init__(self, config):
        self.lock = threading.RLock()
        self.initial_config = dict(config)
        self.reset()

    def reset(self):
        """Forget every resource, action, fault and logged request; restore the start-up config."""
        with self.lock:
            self.config = dict(self.initial_config)
            self.servers = {}
            self.ssh_keys = {}
            self.firewalls = {}
            self.zones = {}  # id -> zone; a zone's RRSets are in zone["_rrsets"], keyed (name, type)
            self.images = {}  # id -> snapshot/backup image made by create_image
            self.volumes = {}
            self.primary_ips = {}
            self.actions = {}
            self.releasing = {}  # server id -> delete_server action id, while firewalls hold on
            self.next_id = {"server": 1001, "ssh_key": 3001, "firewall": 2001, "action": 9001, "ip": 4001,
                            "zone": 5001, "rrset": 1, "image": 7001, "volume": 8001, "primary_ip": 6001}
            self.requests = []
            self.faults = []
            self.fault_seq = 0
            self.tokens = float(self.config["rate_limit"])
            self.tokens_at = time.time()

    def new_id(self, kind):
        value = self.next_id[kind]
        self.next_id[kind] += 1
        return value

    # -- rate limit (token bucket refilled at one request per second, like the real API) --
    def rate_limit(self):
        limit = int(self.config["rate_limit"])
        t = time.time()
        refill = float(self.config["rate_refill"])
        self.tokens = min(float(limit), self.tokens + (t - self.tokens_at) * refill)
        self.tokens_at = t
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        remaining = int(self.tokens)
        reset = int(math.ceil(t + (limit - self.tokens) / refill)) if refill > 0 else int(t) + 3600
        return allowed, {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
                         "RateLimit-Reset": str(reset)}

    # -- actions --
    def new_action(self, command, resources, polls=None):
        aid = self.new_id("action")
        action = {
            "id": aid, "command": command, "status": "running", "progress": 0,
            "started": now_iso(), "finished": None, "resources": resources, "error": None,
            "_created": time.time(), "_polls": 0,
            "_need": self.config["action_polls"] if polls is None else polls,
            "_on_success": None, "_fail": None,
        }
        fail = self.take_action_fault(command)
        if fail:
            action["_fail"] = fail
        self.actions[aid] = action
        if action["_need"] <= 0:
            self.advance_action(action, observe=False)
        return action

    def advance_action(self, action, observe=True):
        if action["status"] != "running":
            return
        if observe:
            action["_polls"] += 1
        done = (action["_polls"] >= action["_need"]
                or time.time() - action["_created"] >= float(self.config["action_seconds"]))
        if not done:
            need = max(1, action["_need"])
            action["progress"] = min(99, int(100 * action["_polls"] / (need + 1)) or 0)
            return
        action["finished"] = now_iso()
        if action["_fail"]:
            action["status"] = "error"
            action["error"] = {"code": action["_fail"]["code"], "message": action["_fail"]["message"]}
        else:
            action["status"] = "success"
            action["progress"] = 100
        hook = action["_on_success"]
        action["_on_success"] = None
        if hook:
            hook(action["status"] == "success")

    def render_action(self, action, observe=True):
        self.advance_action(action, observe=observe)
        return {k: copy.deepcopy(v) for k, v in action.items() if not k.startswith("_")}

    def take_action_fault(self, command):
        for fault in self.faults:
            if fault.get("kind") != "action_error" or fault["remaining"] <= 0:
                continue
            if fault.get("command") and fault["command"] != command:
                continue
            fault["remaining"] -= 1
            return fault
        return None

    # -- servers --
    def server_firewalls(self, server):
        """public_net.firewalls: "pending" while an apply_firewall action for the pair runs."""
        out = []
        for fw in sorted(self.firewalls.values(), key=lambda f: f["id"]):
            if server["id"] in self.firewall_server_ids(fw):
                pending = any(
                    a["command"] == "apply_firewall" and a["status"] == "running"
                    and {"id": fw["id"], "type": "firewall"} in a["resources"]
                    and {"id": server["id"], "type": "server"} in a["resources"]
                    for a in self.actions.values())
                out.append({"id": fw["id"], "status": "pending" if pending else "applied"})
        return out

    def observe_server(self, server):
        create = self.actions.get(server["_create_action"])
        if create is not None and create["status"] == "running":
            self.advance_action(create)
            if create["status"] == "running":
                return
        if server["status"] == "starting":
            server["_starting_reads"] += 1
            if server["_starting_reads"] > self.config["starting_polls"]:
                server["status"] = "running"

    def render_server(self, server, observe=True):
        if observe:
            self.observe_server(server)
        st = next(t for t in SERVER_TYPES if t["id"] == server["_type_id"])
        loc = next(l for l in LOCATIONS if l["name"] == server["_location"])
        image = next((i for i in IMAGES + list(self.images.values()) if i["id"] == server["_image_id"]), None)
        dc = dict(DATACENTERS[loc["name"]])
        ids = [t["id"] for t in SERVER_TYPES]
        dc["location"] = copy.deepcopy(loc)
        dc["server_types"] = {"supported": ids, "available": ids, "available_for_migration": ids}
        ipv4 = None
        if server["_ipv4"]:
            ipv4 = {"id": server["_ipv4_id"], "ip": server["_ipv4"], "blocked": False,
                    "dns_ptr": "static.%s.clients.your-server.de" % ".".join(reversed(server["_ipv4"].split(".")))}
        ipv6 = None
        if server["_ipv6"]:
            ipv6 = {"id": server["_ipv6_id"], "ip": server["_ipv6"], "blocked": False, "dns_ptr": []}
        return {
            "id": server["id"],
            "name": server["name"],
            "status": server["status"],
            "created": server["created"],
            "public_net": {"ipv4": ipv4, "ipv6": ipv6, "floating_ips": [],
                           "firewalls": self.server_firewalls(server)},
            "private_net": [],
            "server_type": copy.deepcopy(st),
            "datacenter": dc,
            "location": copy.deepcopy(loc),
            "image": copy.deepcopy(image),
            "iso": None,
            "rescue_enabled": False,
            "locked": False,
            "backup_window": None,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": st["prices"][0]["included_traffic"],
            "protection": {"delete": False, "rebuild": False},
            "labels": dict(server["labels"]),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": st["disk"],
            "placement_group": None,
        }

    def allocate_ipv4(self):
        used = {s["_ipv4"] for s in self.servers.values()}
        for host in list(IPV4_NET.hosts())[9:]:
            if str(host) not in used:
                return str(host)
        raise ApiError(422, "resource_unavailable", "no IPv4 address left")

    def lookup(self, catalogue, ref, field):
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            found = next((x for x in catalogue if x["id"] == int(ref)), None)
        else:
            found = next((x for x in catalogue if x["name"] == ref), None)
        if found is None:
            raise invalid_input(field, "%s %r not found" % (field, ref))
        return found

    def create_server(self, body, seeded=False):
        name = require_field(body, "name", str)
        server_type = require_field(body, "server_type", (str, int))
        image = require_field(body, "image", (str, int))
        if not valid_hostname(name):
            raise invalid_input("name", "name must be a valid hostname")
        labels = check_labels(body.get("labels"))
        st = self.lookup(SERVER_TYPES, server_type, "server_type")
        img = self.lookup(IMAGES + [i for i in self.images.values() if i["status"] == "available"], image, "image")
        location = body.get("location") or None
        if body.get("datacenter") and not location:
            dc = next((v for v in DATACENTERS.values() if v["name"] == body["datacenter"]), None)
            if dc is None:
                raise invalid_input("datacenter", "datacenter %r not found" % body["datacenter"])
            location = next(k for k, v in DATACENTERS.items() if v is dc)
        loc = self.lookup(LOCATIONS, location or "fsn1", "location")
        user_data = body.get("user_data")
        if user_data is not None:
            if not isinstance(user_data, str):
                raise invalid_input("user_data", "user_data must be a string")
            if len(user_data.encode("utf-8")) > USER_DATA_LIMIT:
                raise invalid_input("user_data", "user_data must not exceed 32 KiB")
        keys = []
        for ref in body.get("ssh_keys") or []:
            found = self.lookup(list(self.ssh_keys.values()), ref, "ssh_keys")
            keys.append(found["id"])
        firewall_ids = []
        for item in body.get("firewalls") or []:
            fid = item.get("firewall") if isinstance(item, dict) else None
            if not isinstance(fid, int) or fid not in self.firewalls:
                raise invalid_input("firewalls", "firewall %r not found" % (fid,))
            firewall_ids.append(fid)
        public_net = body.get("public_net") or {}
        if not isinstance(public_net, dict):
            raise invalid_input("public_net", "public_net must be an object")
        enable_v4 = public_net.get("enable_ipv4", True)
        enable_v6 = public_net.get("enable_ipv6", True)
        if any(s["name"] == name for s in self.servers.values()):
            raise uniqueness_error("name")
        sid = self.new_id("server")
        server = {
            "id": sid, "name": name, "labels": labels, "created": now_iso(),
            "status": "initializing", "_type_id": st["id"], "_image_id": img["id"],
            "_location": loc["name"], "_ssh_keys": keys, "_user_data": user_data,
            "_ipv4": self.allocate_ipv4() if enable_v4 else None, "_ipv4_id": self.new_id("ip"),
            "_ipv6": "2001:db8:%x::/64" % sid if enable_v6 else None, "_ipv6_id": self.new_id("ip"),
            "_starting_reads": 0, "_create_action": None,
            "_start": body.get("start_after_create", True),
        }
        self.servers[sid] = server
        for fid in firewall_ids:
            self.firewalls[fid]["_servers"].append(sid)
        if seeded:
            server["status"] = "running" if server["_start"] else "off"
            return server, None, []
        action = self.new_action("create_server", [{"id": sid, "type": "server"}])
        server["_create_action"] = action["id"]

        def on_create_done(ok, server=server):
            if not ok:
                server["status"] = "off"
            elif server["_start"]:
                server["status"] = "starting" if self.config["starting_polls"] > 0 else "running"
            else:
                server["status"] = "off"

        action["_on_success"] = on_create_done
        if action["status"] != "running":  # finished immediately (action_polls == 0)
            on_create_done(action["status"] == "success")
        next_actions = []
        if server["_start"]:
            next_actions.append(self.new_action("start_server", [{"id": sid, "type": "server"}]))
        for fid in firewall_ids:
            next_actions.append(self.new_action(
                "apply_firewall", [{"id": fid, "type": "firewall"}, {"id": sid, "type": "server"}]))
        return server, action, next_actions

    def delete_server(self, sid):
        """The server is gone at once (GET answers 404). Its firewalls let go of it when the
        delete_server action has finished (config release_on_delete = "after_action", as the real
        API does: deleting the firewall before that answers 422 resource_in_use) or at once
        ("immediate")."""
        server = self.servers.pop(sid, None)
        if server is None:
            raise not_found("server")
        for vol in self.volumes.values():
            if vol["server"] == sid:
                vol["server"] = None
        for ip in list(self.primary_ips.values()):
            if ip["assignee_id"] == sid:
                if ip["auto_delete"]:
                    del self.primary_ips[ip["id"]]
                else:
                    ip["assignee_id"] = None
        action = self.new_action("delete_server", [{"id": sid, "type": "server"}])

        def release(_ok=True, sid=sid):
            for fw in self.firewalls.values():
                if sid in fw["_servers"]:
                    fw["_servers"].remove(sid)
            self.releasing.pop(sid, None)

        if self.config["release_on_delete"] == "immediate" or action["status"] != "running":
            release()
        else:
            self.releasing[sid] = action["id"]
            action["_on_success"] = release
        return action

    # -- images (snapshots), volumes, primary IPs --
    def create_image(self, sid, body):
        server = self.servers.get(sid)
        if server is None:
            raise not_found("server")
        body = require_body_object(body)
        itype = body.get("type", "snapshot")
        if itype not in ("snapshot", "backup"):
            raise invalid_input("type", "type must be snapshot or backup")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid_input("description", "description must be a string")
        labels = check_labels(body.get("labels"))
        base = self.lookup(IMAGES + list(self.images.values()), server["_image_id"], "image")
        iid = self.new_id("image")
        image = {
            "id": iid, "type": itype, "status": "creating", "name": None,
            "description": description if description is not None else "%s-%s" % (server["name"], now_iso()),
            "image_size": None, "disk_size": next(t["disk"] for t in SERVER_TYPES if t["id"] == server["_type_id"]),
            "created": now_iso(), "created_from": {"id": sid, "name": server["name"]},
            "bound_to": sid if itype == "backup" else None, "os_flavor": base["os_flavor"],
            "os_version": base["os_version"], "rapid_deploy": False, "protection": {"delete": False},
            "deprecated": None, "deleted": None, "labels": labels, "architecture": base["architecture"],
        }
        self.images[iid] = image
        action = self.new_action("create_image", [{"id": sid, "type": "server"}, {"id": iid, "type": "image"}])

        def on_done(ok, image=image):
            if ok:
                image["status"] = "available"
                image["image_size"] = 1.5
            else:
                self.images.pop(image["id"], None)

        action["_on_success"] = on_done
        if action["status"] != "running":
            on_done(action["status"] == "success")
        return image, action

    def seed_volume(self, item):
        name = require_field(item, "name", str)
        loc = self.lookup(LOCATIONS, item.get("location") or "fsn1", "location")
        server = item.get("server")
        if server is not None and server not in self.servers:
            raise invalid_input("server", "server %r not found" % (server,))
        vid = self.new_id("volume")
        vol = {"id": vid, "name": name, "labels": check_labels(item.get("labels")), "created": now_iso(),
               "format": item.get("format"), "linux_device": "/dev/disk/by-id/scsi-0HC_Volume_%d" % vid,
               "location": copy.deepcopy(loc), "protection": {"delete": False}, "server": server,
               "size": int(item.get("size", 10)), "status": "available"}
        self.volumes[vid] = vol
        return vol

    def seed_primary_ip(self, item):
        name = require_field(item, "name", str)
        loc = self.lookup(LOCATIONS, item.get("location") or "fsn1", "location")
        assignee = item.get("assignee_id")
        if assignee is not None and assignee not in self.servers:
            raise invalid_input("assignee_id", "server %r not found" % (assignee,))
        pid = self.new_id("primary_ip")
        dc = dict(DATACENTERS[loc["name"]], location=copy.deepcopy(loc))
        ids = [t["id"] for t in SERVER_TYPES]
        dc["server_types"] = {"supported": ids, "available": ids, "available_for_migration": ids}
        ip = {"id": pid, "name": name, "labels": check_labels(item.get("labels")), "created": now_iso(),
              "type": "ipv4", "ip": "198.51.100.%d" % (pid % 250 + 1), "dns_ptr": [], "blocked": False,
              "assignee_id": assignee, "assignee_type": "server", "auto_delete": bool(item.get("auto_delete", False)),
              "datacenter": dc, "location": copy.deepcopy(loc), "protection": {"delete": False}}
        self.primary_ips[pid] = ip
        return ip

    def attached_ids(self, fw):
        """Servers a firewall is directly applied to, including servers being deleted."""
        return [sid for sid in fw["_servers"] if sid in self.servers or sid in self.releasing]

    def firewall_in_use(self, fw):
        # A label selector target keeps a firewall in use whatever it matches (as the real API).
        return bool(self.attached_ids(fw) or fw["_selectors"])

    # -- ssh keys --
    def create_ssh_key(self, body):
        name = require_field(body, "name", str)
        public_key = require_field(body, "public_key", str)
        if not name.strip():
            raise invalid_input("name", "name must not be empty")
        labels = check_labels(body.get("labels"))
        fingerprint, _ = ssh_fingerprint(public_key)
        for key in self.ssh_keys.values():
            if key["name"] == name:
                raise uniqueness_error("name")
            if key["fingerprint"] == fingerprint:
                raise uniqueness_error("public_key")
        kid = self.new_id("ssh_key")
        key = {"id": kid, "name": name, "fingerprint": fingerprint, "public_key": public_key.strip(),
               "labels": labels, "created": now_iso()}
        self.ssh_keys[kid] = key
        return key

    # -- firewalls --
    def firewall_server_ids(self, fw):
        ids = [sid for sid in fw["_servers"] if sid in self.servers]
        for selector in fw["_selectors"]:
            terms = parse_selector(selector)
            for sid in sorted(self.servers):
                if sid not in ids and selector_matches(terms, self.servers[sid]["labels"]):
                    ids.append(sid)
        return ids

    def render_firewall(self, fw):
        applied = [{"type": "server", "server": {"id": sid}} for sid in self.attached_ids(fw)]
        for selector in fw["_selectors"]:
            terms = parse_selector(selector)
            matched = [sid for sid in sorted(self.servers) if selector_matches(terms, self.servers[sid]["labels"])]
            applied.append({"type": "label_selector", "label_selector": {"selector": selector},
                            "applied_to_resources": [{"type": "server", "server": {"id": sid}} for sid in matched]})
        return {"id": fw["id"], "name": fw["name"], "labels": dict(fw["labels"]), "created": fw["created"],
                "rules": copy.deepcopy(fw["rules"]), "applied_to": applied}

    def check_rules(self, rules):
        if not isinstance(rules, list):
            raise invalid_input("rules", "rules must be an array")
        out = []
        for i, rule in enumerate(rules):
            field = "rules[%d]" % i
            if not isinstance(rule, dict):
                raise invalid_input(field, "rule must be an object")
            direction = rule.get("direction")
            protocol = rule.get("protocol")
            if direction not in ("in", "out"):
                raise invalid_input(field + ".direction", "direction must be in or out")
            if protocol not in ("tcp", "udp", "icmp", "esp", "gre"):
                raise invalid_input(field + ".protocol", "invalid protocol")
            port = rule.get("port")
            if protocol in ("tcp", "udp"):
                if not isinstance(port, str) or not re.match(r"^(any|\d{1,5}(-\d{1,5})?)$", port):
                    raise invalid_input(field + ".port", "port is required for tcp and udp (e.g. 22 or 80-85)")
                if port != "any":
                    bounds = [int(p) for p in port.split("-")]
                    if not all(1 <= b <= 65535 for b in bounds) or bounds != sorted(bounds):
                        raise invalid_input(field + ".port", "invalid port range %r" % port)
            elif port is not None:
                raise invalid_input(field + ".port", "port is only allowed for tcp and udp")
            key = "source_ips" if direction == "in" else "destination_ips"
            ips = rule.get(key) or []
            if not ips:
                raise invalid_input(field + "." + key, "%s is required for direction %s" % (key, direction))
            for ip in ips + (rule.get("destination_ips" if direction == "in" else "source_ips") or []):
                if not isinstance(ip, str) or "/" not in ip:
                    raise invalid_input(field + "." + key, "%r is not a network in CIDR notation" % (ip,))
                try:
                    ipaddress.ip_network(ip, strict=True)
                except ValueError:
                    raise invalid_input(field + "." + key, "%r is not a valid network (host bits set?)" % (ip,))
            description = rule.get("description")
            if description is not None and (not isinstance(description, str) or len(description) > 255):
                raise invalid_input(field + ".description", "description must be at most 255 characters")
            out.append({
                "description": description,
                "direction": direction,
                "protocol": protocol,
                "port": port,
                "source_ips": list(rule.get("source_ips") or []) if direction == "in" else [],
                "destination_ips": list(rule.get("destination_ips") or []) if direction == "out" else [],
            })
        return out

    def parse_targets(self, items, field):
        if not isinstance(items, list):
            raise invalid_input(field, "%s must be an array" % field)
        servers, selectors = [], []
        for item in items:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "server":
                target = item.get("server")
                sid = target.get("id") if isinstance(target, dict) else None
                if not isinstance(sid, int):
                    raise invalid_input(field, "server.id is required for type server")
                servers.append(sid)
            elif kind == "label_selector":
                target = item.get("label_selector")
                selector = target.get("selector") if isinstance(target, dict) else None
                if not isinstance(selector, str):
                    raise invalid_input(field, "label_selector.selector is required for type label_selector")
                parse_selector(selector)
                selectors.append(selector)
            else:
                raise invalid_input(field, "type must be server or label_selector")
        return servers, selectors

    def apply_firewall(self, fw, items, field, on_create=False):
        servers, selectors = self.parse_targets(items, field)
        for sid in servers:
            if sid not in self.servers:
                status = 422 if on_create else 404
                raise ApiError(status, "firewall_resource_not_found",
                               "the resource the firewall should be applied to was not found")
            if sid in fw["_servers"] or servers.count(sid) > 1:
                code = "server_already_added" if on_create else "firewall_already_applied"
                raise ApiError(422, code, "firewall is already applied to server %d" % sid)
        for selector in selectors:
            if selector in fw["_selectors"]:
                raise ApiError(422, "firewall_already_applied", "firewall is already applied to %r" % selector)
        actions = []
        for sid in servers:
            fw["_servers"].append(sid)
            actions.append(self.new_action("apply_firewall", [{"id": fw["id"], "type": "firewall"},
                                                              {"id": sid, "type": "server"}]))
        for selector in selectors:
            fw["_selectors"].append(selector)
            actions.append(self.new_action("apply_firewall", [{"id": fw["id"], "type": "firewall"}]))
        return actions

    def remove_firewall(self, fw, items):
        servers, selectors = self.parse_targets(items, "remove_from")
        for sid in servers:
            if sid not in fw["_servers"]:
                raise ApiError(422, "firewall_resource_not_found", "firewall is not applied to server %d" % sid)
        for selector in selectors:
            if selector not in fw["_selectors"]:
                raise ApiError(422, "firewall_resource_not_found", "firewall is not applied to %r" % selector)
        actions = []
        for sid in servers:
            fw["_servers"].remove(sid)
            actions.append(self.new_action("remove_firewall", [{"id": fw["id"], "type": "firewall"},
                                                               {"id": sid, "type": "server"}]))
        for selector in selectors:
            fw["_selectors"].remove(selector)
            actions.append(self.new_action("remove_firewall", [{"id": fw["id"], "type": "firewall"}]))
        return actions

    def create_firewall(self, body):
        name = require_field(body, "name", str)
        if not name.strip():
            raise invalid_input("name", "name must not be empty")
        labels = check_labels(body.get("labels"))
        rules = self.check_rules(body.get("rules") or [])
        if any(f["name"] == name for f in self.firewalls.values()):
            raise uniqueness_error("name")
        fw = {"id": None, "name": name, "labels": labels, "created": now_iso(), "rules": rules,
              "_servers": [], "_selectors": []}
        # Validate apply_to against a scratch copy first so that a bad target creates nothing.
        scratch = dict(fw, _servers=[], _selectors=[])
        saved = self.next_id["action"]
        self.apply_firewall(scratch, body.get("apply_to") or [], "apply_to", on_create=True)
        for aid in [a for a in self.actions if a >= saved]:
            del self.actions[aid]
        self.next_id["action"] = saved
        fw["id"] = self.new_id("firewall")
        self.firewalls[fw["id"]] = fw
        actions = self.apply_firewall(fw, body.get("apply_to") or [], "apply_to", on_create=True)
        return fw, actions


    # -- zones and RRSets (DNS) --
    def create_zone(self, body):
        """Zones come only from the control API's seed (POST /zones is not served). As on the real
        API a primary Zone starts with an SOA RRSet and an NS RRSet (the three assigned Hetzner
        nameservers) at the apex."""
        name = require_field(body, "name", str)
        labels = check_labels(body.get("labels"))
        if (name != name.lower() or name.endswith(".") or len(name) > 255 or name.count(".") < 1
                or not all(ZONE_LABEL.match(part) for part in name.split("."))):
            raise invalid_input("name", "name must be a lower-case domain name without a trailing dot")
        mode = body.get("mode", "primary")
        if mode != "primary":
            raise invalid_input("mode", "only primary zones are supported by this fake")
        ttl = body.get("ttl", 3600)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not TTL_MIN <= ttl <= TTL_MAX:
            raise invalid_input("ttl", "ttl must be an integer between %d and %d" % (TTL_MIN, TTL_MAX))
        registrar = body.get("registrar", "hetzner")
        if registrar not in ZONE_REGISTRARS:
            raise invalid_input("registrar", "registrar must be one of %s" % ", ".join(ZONE_REGISTRARS))
        delegation = body.get("delegation_status", "valid")
        if delegation not in DELEGATION_STATUSES:
            raise invalid_input("delegation_status", "delegation_status must be one of %s"
                                % ", ".join(DELEGATION_STATUSES))
        if any(z["name"] == name for z in self.zones.values()):
            raise uniqueness_error("name")
        zone = {"id": self.new_id("zone"), "name": name, "labels": labels, "created": now_iso(),
                "ttl": ttl, "mode": mode, "registrar": registrar, "_delegation": delegation, "_rrsets": {}}
        serial = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d01")
        defaults = [
            {"name": "@", "type": "SOA", "records": [{"value": "%s dns.hetzner.com. %s 86400 10800 3600000 3600"
                                                               % (ZONE_NAMESERVERS[0], serial)}]},
            {"name": "@", "type": "NS", "records": [{"value": ns} for ns in ZONE_NAMESERVERS]},
        ]
        rrsets = body.get("rrsets") or []
        if not isinstance(rrsets, list):
            raise invalid_input("rrsets", "rrsets must be an array")
        for item in defaults:
            self.create_rrset(zone, item)
        for item in rrsets:
            if not isinstance(item, dict):
                raise invalid_input("rrsets", "each rrset must be an object")
            self.create_rrset(zone, item)
        self.zones[zone["id"]] = zone
        return zone

    def find_zone(self, id_or_name):
        if id_or_name.isdigit():
            zone = self.zones.get(int(id_or_name))
        else:
            zone = next((z for z in self.zones.values() if z["name"] == id_or_name), None)
        if zone is None:
            raise not_found("zone")
        return zone

    def render_zone(self, zone):
        return {
            "id": zone["id"],
            "name": zone["name"],
            "created": zone["created"],
            "mode": zone["mode"],
            "ttl": zone["ttl"],
            "labels": dict(zone["labels"]),
            "protection": {"delete": False},
            "status": "ok",
            "registrar": zone["registrar"],
            "record_count": sum(len(r["records"]) for r in zone["_rrsets"].values()),
            "authoritative_nameservers": {
                "assigned": list(ZONE_NAMESERVERS),
                "delegated": list(ZONE_NAMESERVERS) if zone["_delegation"] in ("valid", "partially-valid") else [],
                "delegation_last_check": zone["created"],
                "delegation_status": zone["_delegation"],
            },
        }

    @staticmethod
    def render_rrset(zone, rrset):
        return {
            "id": "%s/%s" % (rrset["name"], rrset["type"]),
            "name": rrset["name"],
            "type": rrset["type"],
            "ttl": rrset["ttl"],
            "labels": dict(rrset["labels"]),
            "protection": {"change": False},
            "records": [dict(r) for r in rrset["records"]],
            "zone": zone["id"],
        }

    @staticmethod
    def check_rrset_name(zone, name, field="name"):
        if not isinstance(name, str) or not name:
            raise invalid_input(field, "name is required")
        if name != name.lower():
            raise invalid_input(field, "name must be in lower case")
        if name.endswith("."):
            raise invalid_input(field, "name must not end with a dot")
        if name == zone["name"] or name.endswith("." + zone["name"]):
            raise invalid_input(field, "name must not end with the zone name (use @ for the zone apex)")
        if name != "@" and (len(name) > 253 - len(zone["name"]) - 1
                            or not all(RR_LABEL.match(part) for part in name.split("."))):
            raise invalid_input(field, "name %r is not a valid record name" % name)
        return name

    @staticmethod
    def check_rrset_type(rr_type, field="type"):
        if rr_type not in RRSET_TYPES:
            raise invalid_input(field, "type must be one of %s" % ", ".join(RRSET_TYPES))
        return rr_type

    def create_rrset(self, zone, body):
        """Validate and add one RRSet to a zone (the caller makes the action)."""
        name = self.check_rrset_name(zone, require_field(body, "name", str))
        rr_type = self.check_rrset_type(require_field(body, "type", str))
        records = require_field(body, "records", list)
        ttl = body.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not TTL_MIN <= ttl <= TTL_MAX):
            raise invalid_input("ttl", "ttl must be null or an integer between %d and %d" % (TTL_MIN, TTL_MAX))
        labels = check_labels(body.get("labels"))
        if not records:
            raise invalid_input("records", "records must not be empty")
        out, seen = [], set()
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("value"), str) or not record["value"]:
                raise invalid_input("records", "each record needs a string value")
            comment = record.get("comment")
            if comment is not None and not isinstance(comment, str):
                raise invalid_input("records", "comment must be a string")
            value = record["value"]
            if value in seen:
                raise invalid_input("records", "record values must be distinct (%r given twice)" % value)
            seen.add(value)
            if rr_type in ("A", "AAAA"):
                try:
                    ip = ipaddress.ip_address(value)
                except ValueError:
                    ip = None
                if ip is None or ip.version != (4 if rr_type == "A" else 6):
                    raise invalid_input("records", "%r is not a valid IPv%s address"
                                        % (value, "4" if rr_type == "A" else "6"))
            out.append({"value": value, "comment": comment or ""})
        if (name, rr_type) in zone["_rrsets"]:
            raise uniqueness_error("name", "rrset %s/%s already exists" % (name, rr_type))
        rrset = {"name": name, "type": rr_type, "ttl": ttl, "labels": labels, "records": out,
                 "_created": now_iso(), "_seq": self.new_id("rrset")}
        zone["_rrsets"][(name, rr_type)] = rrset
        return rrset

    def find_rrset(self, zone, name, rr_type):
        self.check_rrset_type(rr_type, "rr_type")
        rrset = zone["_rrsets"].get((name, rr_type))
        if rrset is None:
            raise not_found("rrset")
        return rrset

    # -- dump --
    def dump(self):
        return {
            "servers": [dict(self.render_server(s, observe=False), user_data=s["_user_data"],
                             ssh_keys=s["_ssh_keys"]) for s in sorted(self.servers.values(), key=lambda s: s["id"])],
            "ssh_keys": [dict(k) for k in sorted(self.ssh_keys.values(), key=lambda k: k["id"])],
            "firewalls": [self.render_firewall(f) for f in sorted(self.firewalls.values(), key=lambda f: f["id"])],
            "zones": [self.render_zone(z) for z in sorted(self.zones.values(), key=lambda z: z["id"])],
            "rrsets": [dict(self.render_rrset(z, r), zone_name=z["name"])
                       for z in sorted(self.zones.values(), key=lambda z: z["id"])
                       for r in sorted(z["_rrsets"].values(), key=lambda r: r["_seq"])],
            "images": [copy.deepcopy(i) for i in sorted(self.images.values(), key=lambda i: i["id"])],
            "volumes": [copy.deepcopy(v) for v in sorted(self.volumes.values(), key=lambda v: v["id"])],
            "primary_ips": [copy.deepcopy(i) for i in sorted(self.primary_ips.values(), key=lambda i: i["id"])],
            "actions": [self.render_action(a, observe=False) for a in sorted(self.actions.values(), key=lambda a: a["id"])],
            "config": dict(self.config),
        }


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------


def _id(value, kind):
    if not value.isdigit():
        raise invalid_input("id", "invalid %s id %r" % (kind, value))
    return int(value)


class Api:
    """The Hetzner Cloud API routes. `path` is relative to /v1."""

    def __init__(self, state):
        self.state = state

    def handle(self, method, path, query, body):
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise not_found("route")
        head = parts[0]
        if head == "servers":
            return self.servers(method, parts[1:], query, body)
        if head == "ssh_keys":
            return self.ssh_keys(method, parts[1:], query, body)
        if head == "firewalls":
            return self.firewalls(method, parts[1:], query, body)
        if head == "images":
            return self.images(method, parts[1:], query, body)
        if head == "volumes":
            return self.owned(method, parts[1:], query, body, self.state.volumes, "volume", "volumes")
        if head == "primary_ips":
            return self.owned(method, parts[1:], query, body, self.state.primary_ips, "primary_ip", "primary_ips")
        if head == "zones":
            return self.zones(method, [unquote(p) for p in parts[1:]], query, body)
        if head == "actions":
            return self.actions(method, parts[1:], query, None)
        if head == "pricing" and method == "GET" and len(parts) == 1:
            return 200, pricing()
        if head in ("server_types", "locations", "datacenters") and method == "GET":
            return self.catalogue(head, parts[1:], query)
        raise not_found("route")

    # -- generic action helpers --
    def actions(self, method, rest, query, resource):
        """/actions, /actions/{id}, /{kind}/actions[/{id}], /{kind}/{id}/actions[/{action_id}]."""
        s = self.state
        if method != "GET":
            raise not_found("route")
        kind_type = None
        res_id = None
        if resource is not None:
            kind_type, res_id = resource

        def visible(a):
            if kind_type is None:
                return True
            return any(r["type"] == kind_type and (res_id is None or r["id"] == res_id) for r in a["resources"])

        if len(rest) == 1:
            aid = _id(rest[0], "action")
            action = s.actions.get(aid)
            if action is None or not visible(action):
                raise not_found("action")
            return 200, {"action": s.render_action(action)}
        if rest:
            raise not_found("route")
        ids = query.get("id")
        if kind_type is None and not ids:  # only GET /actions requires ids (listing all was removed)
            raise invalid_input("id", "id is required")
        items = [a for a in s.actions.values() if visible(a)]
        if ids:
            wanted = {_id(i, "action") for i in ids}
            items = [a for a in items if a["id"] in wanted]
        statuses = query.get("status")
        rendered = [s.render_action(a) for a in items]
        if statuses:
            rendered = [a for a in rendered if a["status"] in statuses]
        sort_items(rendered, query, {"id", "command", "status", "started", "finished"})
        if res_id is None and kind_type is None:
            return 200, {"actions": rendered}
        return 200, paginate(rendered, query, "actions")

    def listing(self, items, query, key, sort_fields=("id", "name", "created")):
        name = query.get("name")
        if name:
            items = [x for x in items if x["name"] == name[-1]]
        selector = query.get("label_selector")
        if selector:
            terms = parse_selector(selector[-1])
            items = [x for x in items if selector_matches(terms, x.get("labels") or {})]
        sort_items(items, query, set(sort_fields))
        return 200, paginate(items, query, key)

    # -- servers --
    def servers(self, method, rest, query, body):
        s = self.state
        if rest and rest[0] == "actions":
            return self.actions(method, rest[1:], query, ("server", None))
        if not rest:
            if method == "GET":
                items = [s.render_server(x) for x in s.servers.values()]
                statuses = query.get("status")
                if statuses:
                    items = [x for x in items if x["status"] in statuses]
                return self.listing(items, query, "servers")
            if method == "POST":
                server, action, next_actions = s.create_server(require_body_object(body))
                return 201, {"server": s.render_server(server, observe=False),
                             "action": s.render_action(action, observe=False),
                             "next_actions": [s.render_action(a, observe=False) for a in next_actions],
                             "root_password": None if server["_ssh_keys"] else "fake-root-password"}
            raise not_found("route")
        sid = _id(rest[0], "server")
        if rest[1:] == ["actions", "create_image"] and method == "POST":
            image, action = s.create_image(sid, body)
            return 201, {"image": copy.deepcopy(image), "action": s.render_action(action, observe=False)}
        if len(rest) >= 2 and rest[1] == "actions":
            if sid not in s.servers:
                raise not_found("server")
            return self.actions(method, rest[2:], query, ("server", sid))
        if len(rest) != 1:
            raise not_found("route")
        if method == "GET":
            server = s.servers.get(sid)
            if server is None:
                raise not_found("server")
            return 200, {"server": s.render_server(server)}
        if method == "DELETE":
            action = s.delete_server(sid)
            return 200, {"action": s.render_action(action, observe=False)}
        if method == "PUT":
            server = s.servers.get(sid)
            if server is None:
                raise not_found("server")
            body = require_body_object(body)
            if "name" in body:
                if not valid_hostname(body["name"]):
                    raise invalid_input("name", "name must be a valid hostname")
                if any(x["name"] == body["name"] and x["id"] != sid for x in s.servers.values()):
                    raise uniqueness_error("name")
                server["name"] = body["name"]
            if "labels" in body:
                server["labels"] = check_labels(body["labels"])
            return 200, {"server": s.render_server(server, observe=False)}
        raise not_found("route")

    # -- images: the system catalogue plus the snapshots made here --
    def images(self, method, rest, query, body):
        s = self.state
        if not rest:
            if method != "GET":
                raise not_found("route")
            items = copy.deepcopy(IMAGES) + [copy.deepcopy(i) for i in s.images.values()]
            for name, field in (("type", "type"), ("status", "status"), ("architecture", "architecture")):
                if query.get(name):
                    items = [i for i in items if i[field] in query[name]]
            return self.listing(items, query, "images")
        if len(rest) != 1:
            raise not_found("route")
        iid = _id(rest[0], "image")
        image = s.images.get(iid)
        if image is None:
            system = next((i for i in IMAGES if i["id"] == iid), None)
            if system is None or method != "GET":
                raise not_found("image") if system is None else ApiError(422, "invalid_input", "system images cannot be changed")
            return 200, {"image": copy.deepcopy(system)}
        if method == "GET":
            return 200, {"image": copy.deepcopy(image)}
        if method == "DELETE":
            del s.images[iid]
            return 204, None
        if method == "PUT":
            body = require_body_object(body)
            if "description" in body:
                image["description"] = body["description"]
            if "labels" in body:
                image["labels"] = check_labels(body["labels"])
            return 200, {"image": copy.deepcopy(image)}
        raise not_found("route")

    # -- volumes and primary IPs (made through the control API only) --
    def owned(self, method, rest, query, body, table, kind, key):
        if not rest:
            if method != "GET":
                raise not_found("route")
            return self.listing([copy.deepcopy(x) for x in table.values()], query, key)
        if len(rest) != 1:
            raise not_found("route")
        oid = _id(rest[0], kind)
        item = table.get(oid)
        if item is None:
            raise not_found(kind)
        if method == "GET":
            return 200, {kind: copy.deepcopy(item)}
        if method == "DELETE":
            attached = item.get("server") if kind == "volume" else item.get("assignee_id")
            if attached is not None and attached in self.state.servers:
                raise ApiError(422, "resource_in_use" if kind == "primary_ip" else "locked",
                               "%s %d is attached to server %d" % (kind, oid, attached))
            del table[oid]
            return 204, None
        if method == "PUT":
            body = require_body_object(body)
            if "labels" in body:
                item["labels"] = check_labels(body["labels"])
            return 200, {kind: copy.deepcopy(item)}
        raise not_found("route")

    # -- ssh keys --
    def ssh_keys(self, method, rest, query, body):
        s = self.state
        if not rest:
            if method == "GET":
                items = [dict(k) for k in s.ssh_keys.values()]
                fp = query.get("fingerprint")
                if fp:
                    items = [k for k in items if k["fingerprint"] == fp[-1]]
                return self.listing(items, query, "ssh_keys", ("id", "name"))
            if method == "POST":
                key = s.create_ssh_key(require_body_object(body))
                return 201, {"ssh_key": dict(key)}
            raise not_found("route")
        if len(rest) != 1:
            raise not_found("route")
        kid = _id(rest[0], "ssh_key")
        key = s.ssh_keys.get(kid)
        if key is None:
            raise not_found("ssh_key")
        if method == "GET":
            return 200, {"ssh_key": dict(key)}
        if method == "DELETE":
            del s.ssh_keys[kid]
            return 204, None
        if method == "PUT":
            body = require_body_object(body)
            if "name" in body:
                if any(k["name"] == body["name"] and k["id"] != kid for k in s.ssh_keys.values()):
                    raise uniqueness_error("name")
                key["name"] = body["name"]
            if "labels" in body:
                key["labels"] = check_labels(body["labels"])
            return 200, {"ssh_key": dict(key)}
        raise not_found("route")

    # -- firewalls --
    def firewalls(self, method, rest, query, body):
        s = self.state
        if rest and rest[0] == "actions":
            return self.actions(method, rest[1:], query, ("firewall", None))
        if not rest:
            if method == "GET":
                items = [s.render_firewall(f) for f in s.firewalls.values()]
                return self.listing(items, query, "firewalls")
            if method == "POST":
                fw, actions = s.create_firewall(require_body_object(body))
                return 201, {"firewall": s.render_firewall(fw),
                             "actions": [s.render_action(a, observe=False) for a in actions]}
            raise not_found("route")
        fid = _id(rest[0], "firewall")
        fw = s.firewalls.get(fid)
        if fw is None:
            raise not_found("firewall")
        if len(rest) >= 2 and rest[1] == "actions":
            if len(rest) == 3 and method == "POST":
                body = require_body_object(body)
                if rest[2] == "apply_to_resources":
                    actions = s.apply_firewall(fw, require_field(body, "apply_to", list), "apply_to")
                elif rest[2] == "remove_from_resources":
                    actions = s.remove_firewall(fw, require_field(body, "remove_from", list))
                elif rest[2] == "set_rules":
                    fw["rules"] = s.check_rules(require_field(body, "rules", list))
                    actions = [s.new_action("set_firewall_rules", [{"id": fid, "type": "firewall"}])]
                    for sid in s.firewall_server_ids(fw):
                        actions.append(s.new_action("apply_firewall", [{"id": fid, "type": "firewall"},
                                                                       {"id": sid, "type": "server"}]))
                else:
                    raise not_found("route")
                return 201, {"actions": [s.render_action(a, observe=False) for a in actions]}
            return self.actions(method, rest[2:], query, ("firewall", fid))
        if len(rest) != 1:
            raise not_found("route")
        if method == "GET":
            return 200, {"firewall": s.render_firewall(fw)}
        if method == "DELETE":
            if s.firewall_in_use(fw):
                raise ApiError(422, "resource_in_use", "firewall with ID %d is still in use" % fid)
            del s.firewalls[fid]
            return 204, None
        if method == "PUT":
            body = require_body_object(body)
            if "name" in body:
                if any(f["name"] == body["name"] and f["id"] != fid for f in s.firewalls.values()):
                    raise uniqueness_error("name")
                fw["name"] = body["name"]
            if "labels" in body:
                fw["labels"] = check_labels(body["labels"])
            return 200, {"firewall": s.render_firewall(fw)}
        raise not_found("route")


    # -- zones and RRSets (DNS) --
    def zones(self, method, rest, query, body):
        s = self.state
        if rest and rest[0] == "actions":
            return self.actions(method, rest[1:], query, ("zone", None))
        if not rest:
            if method == "GET":
                items = [s.render_zone(z) for z in s.zones.values()]
                mode = query.get("mode")
                if mode and mode[-1] not in ("primary", "secondary"):
                    raise invalid_input("mode", "mode must be primary or secondary")
                if mode:
                    items = [z for z in items if z["mode"] == mode[-1]]
                return self.listing(items, query, "zones")
            raise not_found("route")
        zone = s.find_zone(rest[0])
        if len(rest) == 1:
            if method == "GET":
                return 200, {"zone": s.render_zone(zone)}
            raise not_found("route")
        if rest[1] == "actions":
            return self.actions(method, rest[2:], query, ("zone", zone["id"]))
        if rest[1] != "rrsets":
            raise not_found("route")
        if len(rest) == 2:
            if method == "GET":
                items = []
                for rrset in zone["_rrsets"].values():
                    items.append(dict(s.render_rrset(zone, rrset), created=rrset["_created"], _seq=rrset["_seq"]))
                types = query.get("type")
                for rr_type in types or []:
                    s.check_rrset_type(rr_type)
                if types:
                    items = [r for r in items if r["type"] in types]
                items.sort(key=lambda r: r["_seq"])
                status, out = self.listing(items, query, "rrsets")
                for r in out["rrsets"]:
                    r.pop("created")
                    r.pop("_seq")
                return status, out
            if method == "POST":
                rrset = s.create_rrset(zone, require_body_object(body))
                action = s.new_action("create_rrset", [{"id": zone["id"], "type": "zone"}])
                return 201, {"rrset": s.render_rrset(zone, rrset), "action": s.render_action(action, observe=False)}
            raise not_found("route")
        if len(rest) != 4:
            raise not_found("route")
        rrset = s.find_rrset(zone, rest[2], rest[3])
        if method == "GET":
            return 200, {"rrset": s.render_rrset(zone, rrset)}
        if method == "PUT":
            body = require_body_object(body)
            if "labels" in body:
                rrset["labels"] = check_labels(body["labels"])
            return 200, {"rrset": s.render_rrset(zone, rrset)}
        if method == "DELETE":
            del zone["_rrsets"][(rrset["name"], rrset["type"])]
            action = s.new_action("delete_rrset", [{"id": zone["id"], "type": "zone"}])
            return 201, {"action": s.render_action(action, observe=False)}
        raise not_found("route")

    # -- catalogue --
    def catalogue(self, kind, rest, query):
        if kind == "datacenters":
            items = []
            ids = [t["id"] for t in SERVER_TYPES]
            for loc in LOCATIONS:
                dc = dict(DATACENTERS[loc["name"]], location=copy.deepcopy(loc))
                dc["server_types"] = {"supported": ids, "available": ids, "available_for_migration": ids}
                items.append(dc)
            key_one = "datacenter"
        else:
            items = copy.deepcopy({"server_types": SERVER_TYPES, "images": IMAGES, "locations": LOCATIONS}[kind])
            key_one = kind[:-1]
        if rest:
            if len(rest) != 1:
                raise not_found("route")
            item = next((x for x in items if str(x["id"]) == rest[0]), None)
            if item is None:
                raise not_found(key_one)
            return 200, {key_one: item}
        if kind == "images":
            for name, field in (("type", "type"), ("status", "status"), ("architecture", "architecture")):
                if query.get(name):
                    items = [i for i in items if i[field] in query[name]]
        if kind == "server_types" or kind == "datacenters":
            name = query.get("name")
            if name:
                items = [x for x in items if x["name"] == name[-1]]
            out = paginate(items, query, kind)
            if kind == "datacenters":
                out["recommendation"] = DATACENTERS["fsn1"]["id"]
            return 200, out
        return self.listing(items, query, kind)


# ---------------------------------------------------------------------------
# Control API (/__fake/...)
# ---------------------------------------------------------------------------


class Control:
    def __init__(self, state):
        self.state = state

    def handle(self, method, path, body):
        s = self.state
        if path == "/__fake/health" and method == "GET":
            return 200, {"ok": True}
        if path == "/__fake/state" and method == "GET":
            return 200, s.dump()
        if path == "/__fake/reset" and method == "POST":
            s.reset()
            return 200, {"ok": True}
        if path == "/__fake/requests":
            if method == "GET":
                return 200, {"requests": copy.deepcopy(s.requests)}
            if method == "DELETE":
                s.requests.clear()
                return 200, {"ok": True}
        if path == "/__fake/config":
            if method == "POST":
                body = body or {}
                for key, value in body.items():
                    if key not in s.config:
                        return 400, {"error": "unknown config key %r" % key}
                    if key == "release_on_delete" and value not in ("after_action", "immediate"):
                        return 400, {"error": "release_on_delete must be after_action or immediate"}
                    s.config[key] = type(s.config[key])(value)
                if "rate_limit" in body:
                    s.tokens = float(s.config["rate_limit"])
                    s.tokens_at = time.time()
            if method in ("GET", "POST"):
                return 200, dict(s.config)
        if path == "/__fake/faults":
            if method == "GET":
                return 200, {"faults": copy.deepcopy(s.faults)}
            if method == "DELETE":
                s.faults.clear()
                return 200, {"ok": True}
            if method == "POST":
                return self.add_faults(body)
        if path == "/__fake/seed" and method == "POST":
            return self.seed(body or {})
        return 404, {"error": "no such control endpoint %s %s" % (method, path)}

    def add_faults(self, body):
        s = self.state
        items = body if isinstance(body, list) else [body]
        added = []
        for item in items:
            if not isinstance(item, dict):
                return 400, {"error": "fault must be an object"}
            kind = item.get("kind", "http")
            fault = {
                "id": None, "kind": kind,
                "count": int(item.get("count", 1)),
                "code": item.get("code"),
                "message": item.get("message"),
            }
            if kind == "http":
                try:
                    re.compile(item.get("path_regex", ""))
                    re.compile(item.get("body_regex") or "")
                except re.error as err:
                    return 400, {"error": "bad regex: %s" % err}
                fault.update({
                    "method": (item.get("method") or "").upper() or None,
                    "path_regex": item.get("path_regex", ""),
                    "body_regex": item.get("body_regex"),
                    "status": int(item["status"]) if item.get("status") is not None else None,
                    "after": int(item.get("after", 0)),
                    "when": item.get("when", "before"),
                    "delay": float(item.get("delay", 0)),
                    "reset_in": int(item.get("reset_in", 1)),
                    "raw_body": item.get("raw_body"),
                    "json_body": item.get("json_body"),
                    "seen": 0,
                })
                if fault["when"] not in ("before", "after"):
                    return 400, {"error": "when must be before or after"}
                if fault["status"] is None and not fault["delay"]:
                    return 400, {"error": "a fault needs a status or a delay"}
            elif kind == "action_error":
                fault["command"] = item.get("command")
                fault["code"] = fault["code"] or "action_failed"
                fault["message"] = fault["message"] or "action failed (injected)"
            else:
                return 400, {"error": "unknown fault kind %r" % kind}
            s.fault_seq += 1
            fault["id"] = s.fault_seq
            fault["remaining"] = fault["count"]
            s.faults.append(fault)
            added.append(copy.deepcopy(fault))
        return 201, {"faults": added}

    def seed(self, body):
        s = self.state
        out = {"ssh_keys": [], "firewalls": [], "servers": [], "zones": [], "rrsets": [], "volumes": [], "primary_ips": []}
        try:
            for item in body.get("ssh_keys", []):
                item = dict(item)
                if "public_key" not in item:
                    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(
                        ("seed-%s-%d" % (item.get("name"), s.next_id["ssh_key"])).encode()).digest()
                    item["public_key"] = "ssh-ed25519 " + base64.b64encode(blob).decode() + " seeded"
                out["ssh_keys"].append(dict(s.create_ssh_key(item)))
            for item in body.get("firewalls", []):
                fw, _ = s.create_firewall(dict(item))
                out["firewalls"].append(s.render_firewall(fw))
            for item in body.get("servers", []):
                item = dict(item)
                item.setdefault("server_type", "cx22")
                item.setdefault("image", "ubuntu-24.04")
                fws = []
                for ref in item.pop("firewalls", []):
                    if isinstance(ref, dict):
                        ref = ref.get("firewall")
                    if isinstance(ref, str):
                        ref = next((f["id"] for f in s.firewalls.values() if f["name"] == ref), ref)
                    fws.append({"firewall": ref})
                item["firewalls"] = fws
                status = item.pop("status", None)
                server, _, _ = s.create_server(item, seeded=True)
                if status:
                    server["status"] = status
                out["servers"].append(s.render_server(server, observe=False))
            for item in body.get("volumes", []):
                out["volumes"].append(copy.deepcopy(s.seed_volume(dict(item))))
            for item in body.get("primary_ips", []):
                out["primary_ips"].append(copy.deepcopy(s.seed_primary_ip(dict(item))))
            for item in body.get("zones", []):
                zone = s.create_zone(dict(item))
                out["zones"].append(s.render_zone(zone))
                out["rrsets"].extend(s.render_rrset(zone, r) for r in sorted(zone["_rrsets"].values(),
                                                                             key=lambda r: r["_seq"]))
        except ApiError as err:
            return 422, dict(err.body(), seeded=out)
        return 201, out


# ---------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hcloud-fake/1"
    state = None  # set by serve()

    def log_message(self, fmt, *args):  # keep stderr quiet; the request log is in /__fake/requests
        if self.server.verbose:
            sys.stderr.write("fake: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status, body, headers=None, raw=None):
        if raw is not None:
            data = raw.encode("utf-8")
            ctype = "text/html; charset=utf-8"
        elif body is None or status == 204:
            data = b""
            ctype = None
        else:
            data = json.dumps(body).encode("utf-8")
            ctype = "application/json"
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if ctype:
            self.send_header("Content-Type", ctype)
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def dispatch(self, method):
        state = self.state
        url = urlsplit(self.path)
        path = url.path
        raw = self.read_body()
        body = None
        body_error = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                body_error = str(err)

        if path.startswith("/__fake/") or path == "/__fake":
            with state.lock:
                if body_error:
                    status, out = 400, {"error": "invalid JSON: %s" % body_error}
                else:
                    try:
                        status, out = Control(state).handle(method, path.rstrip("/"), body)
                    except ApiError as err:
                        status, out = err.status, err.body()
                    except Exception as err:
                        traceback.print_exc()
                        status, out = 400, {"error": "bad control request: %s: %s" % (type(err).__name__, err)}
            self.send(status, out)
            return

        if path == "/v1" or path.startswith("/v1/"):
            api_path = path[3:]
        elif self.server.serve_root:
            api_path = path
        else:
            api_path = None
        norm_path = "/v1" + api_path if api_path is not None else path
        query = parse_qs(url.query, keep_blank_values=True)
        entry = {"method": method, "path": norm_path, "query": query,
                 "body": body if not body_error else raw.decode("utf-8", "replace"),
                 "time": time.time(), "status": None}

        with state.lock:
            state.requests.append(entry)
            allowed, headers = state.rate_limit()
            fault = None
            for f in state.faults:
                if f["kind"] != "http" or f["remaining"] <= 0:
                    continue
                if f["method"] and f["method"] != method:
                    continue
                if not re.search(f["path_regex"], norm_path):
                    continue
                if f["body_regex"] and not re.search(f["body_regex"], raw.decode("utf-8", "replace")):
                    continue
                if f["seen"] < f["after"]:
                    f["seen"] += 1
                    continue
                f["remaining"] -= 1
                fault = dict(f)
                break
            latency = state.config["latency_ms"] / 1000.0

        # Slept outside the lock, so concurrent requests overlap as on the real API: a client that
        # sends 8 at once waits one latency, not eight. Only that makes a parallel client measurable.
        if latency > 0:
            time.sleep(latency)
        delay = fault["delay"] if fault else 0
        if delay and fault["when"] == "before":
            time.sleep(delay)  # nothing happens until the delay is over
        with state.lock:
            status, out, raw_out = self.process(method, api_path, query, body, body_error,
                                                allowed, headers, fault)
            entry["status"] = status
            if fault:
                entry["fault"] = fault["id"]
        if delay and fault["when"] == "after":
            time.sleep(delay)  # done, but the answer is late (a client timeout loses it)
        try:
            self.send(status, out, headers, raw_out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def process(self, method, api_path, query, body, body_error, allowed, headers, fault):
        state = self.state

        def fault_response():
            status = fault["status"]
            if status == 429:
                headers["RateLimit-Remaining"] = "0"
                headers["RateLimit-Reset"] = str(int(math.ceil(time.time())) + fault["reset_in"])
            if fault["raw_body"] is not None:
                return status, None, fault["raw_body"]
            if fault["json_body"] is not None:
                return status, fault["json_body"], None
            default_codes = {429: ("rate_limit_exceeded", "limit of requests per hour reached"),
                             500: ("service_error", "internal server error (injected)"),
                             502: ("service_error", "bad gateway (injected)"),
                             503: ("unavailable", "service unavailable (injected)"),
                             504: ("timeout", "gateway timeout (injected)"),
                             409: ("conflict", "conflict (injected)"),
                             423: ("locked", "resource is locked (injected)")}
            code, message = default_codes.get(status, ("service_error", "injected error"))
            return status, {"error": {"code": fault["code"] or code, "message": fault["message"] or message,
                                      "details": None}}, None

        if fault and fault["status"] is not None and fault["when"] == "before":
            return fault_response()
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip() or auth[7:].strip() == "invalid":
            return 401, {"error": {"code": "unauthorized", "message": "unable to authenticate",
                                   "details": None}}, None
        if not allowed:
            return 429, {"error": {"code": "rate_limit_exceeded",
                                   "message": "limit of %s requests per hour reached" % headers["RateLimit-Limit"],
                                   "details": None}}, None
        try:
            if api_path is None:
                raise not_found("route")
            if body_error:
                raise ApiError(400, "json_error", "invalid JSON in request body: %s" % body_error)
            status, out = Api(state).handle(method, api_path, query, body)
        except ApiError as err:
            status, out = err.status, err.body()
        except Exception as err:  # a bug in the fake: answer (never hang the client) and say so
            traceback.print_exc()
            status, out = 500, {"error": {"code": "service_error",
                                          "message": "hcloud fake failed: %s: %s" % (type(err).__name__, err),
                                          "details": None}}
        if fault and fault["status"] is not None and fault["when"] == "after":
            return fault_response()
        return status, out, None


def serve(host, port, config, verbose=False, serve_root=True):
    state = State({"latency_ms": 0, **config})
    handler = type("BoundHandler", (Handler,), {"state": state})
    server_cls = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
    httpd = server_cls((host, port), handler)
    httpd.daemon_threads = True
    httpd.verbose = verbose
    httpd.serve_root = serve_root
    return httpd, state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--action-polls", type=int, default=2,
                        help="reads of an action (or of its server) before it finishes")
    parser.add_argument("--action-seconds", type=float, default=30.0,
                        help="an action also finishes this long after it started")
    parser.add_argument("--starting-polls", type=int, default=1,
                        help="reads of a server that stay in 'starting' before it is 'running'")
    parser.add_argument("--rate-limit", type=int, default=3600, help="requests per hour (bucket size)")
    parser.add_argument("--rate-refill", type=float, default=1.0, help="requests added to the bucket per second")
    parser.add_argument("--release-on-delete", choices=("after_action", "immediate"), default="after_action",
                        help="when firewalls let go of a deleted server")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="every API request is answered this many milliseconds late (0 = at once)")
    parser.add_argument("--no-root", action="store_true",
                        help="serve the API only under /v1 (a request to /servers gets 404)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    config = {"action_polls": args.action_polls, "action_seconds": args.action_seconds,
              "starting_polls": args.starting_polls, "rate_limit": args.rate_limit,
              "release_on_delete": args.release_on_delete, "rate_refill": args.rate_refill,
              "latency_ms": args.latency_ms}
    httpd, _ = serve(args.host, args.port, config, args.verbose, serve_root=not args.no_root)
    print("LISTENING %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
