//! The real binary against moto (the EC2 emulator), through a proxy that injects the errors AWS
//! users hit (tests/moto/launch.py). What EC2 holds is read back with boto3, not with the code
//! under test.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::io::Read;

use base64::Engine;
use common::*;
use moto::Moto;
use serde_json::{json, Value};

const NEWEST_AMD64: &str = "ami-0a0000000000a1015";
const SSH_FROM: &str = "198.51.100.7/32";

fn aws_create(cli: &Cli, trial: &str, extra: &[&str]) -> Run {
    let mut a = vec!["--output", "json", "create", trial, "--provider", "aws", "--ssh-from", SSH_FROM];
    a.extend_from_slice(extra);
    cli.run(&a)
}

fn of_trial<'a>(items: &'a Value, trial: &str) -> Vec<&'a Value> {
    items.as_array().unwrap().iter().filter(|x| x["tags"]["munero-trial"] == trial).collect()
}

fn live_instances(state: &Value) -> Vec<&Value> {
    state["instances"].as_array().unwrap().iter().filter(|i| i["state"] != "terminated").collect()
}

/// Every resource still carrying munero-managed=true (terminated instances aside).
fn tagged(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["instances", "volumes", "groups", "keys", "images", "snapshots"] {
        for x in state[kind].as_array().unwrap() {
            if x["tags"]["munero-managed"] == "true" && x["state"] != "terminated" {
                out.push(format!("{kind} {}", x["id"]));
            }
        }
    }
    out
}

/// The user data as cloud-init will read it: base64-decoded, gunzipped when gzipped.
fn user_data(instance: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(instance["user_data_b64"].as_str().unwrap()).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).unwrap();
        s
    } else {
        String::from_utf8(raw).unwrap()
    }
}

/// Ingress as "proto from-to cidr" lines, v4 and v6 alike, sorted.
fn ingress(group: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in group["ingress"].as_array().unwrap() {
        let head = format!("{} {}-{}", p["IpProtocol"].as_str().unwrap(), p["FromPort"], p["ToPort"]);
        for r in p["IpRanges"].as_array().unwrap() {
            out.push(format!("{head} {}", r["CidrIp"].as_str().unwrap()));
        }
        for r in p["Ipv6Ranges"].as_array().unwrap() {
            out.push(format!("{head} {}", r["CidrIpv6"].as_str().unwrap()));
        }
    }
    out.sort();
    out
}

/// The checks every created trial must pass, whatever its size.
fn assert_trial_made_as_specified(state: &Value, trial: &str, instance_type: &str) -> Value {
    let insts: Vec<&Value> = of_trial(&state["instances"], trial);
    assert_eq!(insts.len(), 1, "one instance: {insts:?}");
    let i = insts[0];
    assert_eq!(i["type"], instance_type);
    assert_eq!(i["image"], NEWEST_AMD64, "the newest Canonical Ubuntu 24.04 amd64 image");
    assert_eq!(i["tags"]["munero-managed"], "true");
    let exp: i64 = i["tags"]["munero-expires"].as_str().unwrap().parse().unwrap();
    assert!(exp > now_unix());
    assert_eq!(i["metadata"]["HttpTokens"], "required", "IMDSv2 only: {}", i["metadata"]);
    assert_eq!(i["metadata"]["HttpPutResponseHopLimit"], 1);
    assert_eq!(i["shutdown_behavior"], "terminate");
    assert_eq!(i["key_name"], format!("munero-{trial}"));

    let vols: Vec<&Value> = state["volumes"].as_array().unwrap().iter().filter(|v| v["attachments"][0] == i["id"]).collect();
    assert_eq!(vols.len(), 1, "{vols:?}");
    let v = vols[0];
    assert_eq!((v["size"].as_i64(), v["type"].as_str(), v["encrypted"].as_bool()), (Some(100), Some("gp3"), Some(true)));
    assert_eq!(v["tags"]["munero-trial"], trial);
    assert_eq!(v["tags"]["munero-managed"], "true");
    assert_eq!(v["tags"]["munero-expires"], i["tags"]["munero-expires"]);
    assert_eq!(i["block_devices"][0]["delete_on_termination"], true);

    let groups = of_trial(&state["groups"], trial);
    assert_eq!(groups.len(), 1);
    let g = groups[0];
    assert_eq!(g["tags"]["munero-managed"], "true");
    assert_eq!(g["tags"]["munero-expires"], i["tags"]["munero-expires"]);
    assert_eq!(i["groups"], json!([g["id"]]), "the instance sits in the trial's group only");
    assert_eq!(
        ingress(g),
        vec![
            format!("tcp 22-22 {SSH_FROM}"),
            "tcp 443-443 0.0.0.0/0".to_string(),
            "tcp 443-443 ::/0".to_string(),
            "tcp 80-80 0.0.0.0/0".to_string(),
            "tcp 80-80 ::/0".to_string(),
        ]
    );
    assert_eq!(g["egress"][0]["IpProtocol"], "-1", "egress stays open: {}", g["egress"]);

    let keys = of_trial(&state["keys"], trial);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["tags"]["munero-managed"], "true");
    assert_eq!(keys[0]["tags"]["munero-expires"], i["tags"]["munero-expires"]);
    assert!(keys[0]["public_key"].as_str().unwrap().starts_with("ssh-ed25519 "));
    i.clone()
}

#[test]
fn a_cpu_trial_is_made_tagged_locked_down_and_destroyed_leaving_nothing_tagged() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let r = aws_create(&cli, "acme-cpu", &["--days", "3"]).ok();
    let doc = r.json();
    assert_eq!(doc["provider"], "aws");
    assert_eq!(doc["server_type"], "c6i.2xlarge");
    assert!(doc["ipv4"].as_str().is_some(), "{doc}");

    let state = m.state();
    let i = assert_trial_made_as_specified(&state, "acme-cpu", "c6i.2xlarge");
    let ud = user_data(&i);
    assert!(ud.starts_with("#cloud-config\n"));
    assert!(ud.contains("BEGIN OPENSSH PRIVATE KEY"), "the host key travels in the user data");
    assert!(!ud.contains("nvidia"), "a CPU trial gets no GPU driver");
    assert!(!r.all_output().contains("BEGIN OPENSSH PRIVATE KEY"));

    // status: type, state, address, expiry, from the provider.
    let st = cli.run(&["--output", "json", "status"]).ok().json();
    let row = &st["trials"][0];
    assert_eq!((row["trial"].as_str(), row["provider"].as_str()), (Some("acme-cpu"), Some("aws")));
    assert_eq!(row["server_type"], "c6i.2xlarge");
    assert_eq!(row["state"], "running");
    assert_eq!(row["ipv4"], doc["ipv4"]);
    assert_eq!(row["expires_unix"].as_i64().unwrap().to_string(), i["tags"]["munero-expires"].as_str().unwrap());

    let d = cli.run(&["--output", "json", "destroy", "acme-cpu", "--yes"]).ok();
    assert_eq!(d.json()["ok"], true);
    let after = m.state();
    assert_eq!(tagged(&after), Vec::<String>::new(), "left tagged: {after}");
    assert_eq!(of_trial(&after["instances"], "acme-cpu")[0]["state"], "terminated");
    assert!(of_trial(&after["groups"], "acme-cpu").is_empty() && of_trial(&after["keys"], "acme-cpu").is_empty());
    assert!(!cli.trial_dir("acme-cpu").exists());
}

#[test]
fn a_gpu_trial_gets_a_g4dn_and_the_gpu_cloud_init() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let doc = aws_create(&cli, "acme-gpu", &["--size", "gpu"]).ok().json();
    assert_eq!(doc["server_type"], "g4dn.xlarge");
    let state = m.state();
    let i = assert_trial_made_as_specified(&state, "acme-gpu", "g4dn.xlarge");
    let ud = user_data(&i);
    assert!(ud.starts_with("#cloud-config\n"));
    assert!(ud.contains("munero-gpu-ready.service") && ud.contains("nvidia-ctk runtime configure --runtime=docker"), "{ud}");
    let sent = m.actions("RunInstances");
    assert!(sent[0]["UserData"].as_str().unwrap().len() <= 4 * 16 * 1024 / 3 + 4, "within EC2's 16 KB");
}

#[test]
fn a_create_whose_answer_was_lost_makes_no_second_instance_and_rerunning_it_resumes() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    m.rules(json!([{"action": "RunInstances", "lose_answer": true, "times": 1}]));
    let doc = aws_create(&cli, "acme-retry", &[]).ok().json();
    let insts = of_trial(&m.state()["instances"], "acme-retry").len();
    assert_eq!(insts, 1, "one instance after a lost answer");
    let runs = m.actions("RunInstances");
    assert_eq!(runs.len(), 1, "the instance was found by its tags, not made again");
    let token = runs[0]["ClientToken"].as_str().unwrap();
    assert!(token.starts_with("munero-") && token.len() <= 64, "{token}");

    let again = aws_create(&cli, "acme-retry", &[]).ok().json();
    assert_eq!(again["resumed"], true);
    assert_eq!(again["resources"]["server_id"], doc["resources"]["server_id"]);
    assert_eq!(of_trial(&m.state()["instances"], "acme-retry").len(), 1);
    assert_eq!(m.actions("RunInstances").len(), 1);
}

#[test]
fn teardown_removes_expired_trials_and_spares_live_untagged_and_half_tagged_resources() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let soon = rfc3339(now_unix() + 3600);
    aws_create(&cli, "old-trial", &["--expires", &soon]).ok();
    aws_create(&cli, "live-trial", &["--days", "30"]).ok();
    let past = (now_unix() - 10).to_string();
    let decoys = m.seed(json!({
        "instances": [
            {"tags": {}},
            {"tags": {"munero-trial": "old-trial", "munero-expires": "1000000000"}},
            {"tags": {"munero-managed": "false", "munero-trial": "old-trial", "munero-expires": "1000000000"}}
        ],
        "groups": [
            {"name": "munero-decoy", "tags": {}},
            {"name": "munero-half", "tags": {"munero-trial": "old-trial", "munero-expires": past}}
        ],
        "keys": [
            {"name": "someone-else", "tags": {}},
            {"name": "munero-half", "tags": {"munero-trial": "old-trial", "munero-expires": past}}
        ]
    }));

    let at = rfc3339(now_unix() + 2 * 86400);
    let dry = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at, "--dry-run"]).ok().json();
    assert_eq!(dry["expired"], json!(["old-trial"]));
    assert_eq!(live_instances(&m.state()).len(), 5, "a dry run deletes nothing");

    let doc = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok().json();
    assert_eq!(doc["ok"], true);
    let s = m.state();
    let mut live: Vec<String> = live_instances(&s).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    live.sort();
    let mut want: Vec<String> = decoys["instances"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    want.push(of_trial(&s["instances"], "live-trial").iter().find(|i| i["state"] == "running").unwrap()["id"].as_str().unwrap().into());
    want.sort();
    assert_eq!(live, want, "the live trial and every decoy instance survive");
    let mut groups: Vec<&str> = s["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    groups.sort();
    assert_eq!(groups, ["default", "munero-decoy", "munero-half", "munero-live-trial"]);
    let mut keys: Vec<&str> = s["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["munero-half", "munero-live-trial", "someone-else"]);
    assert!(!cli.trial_dir("old-trial").exists() && cli.trial_dir("live-trial").exists());

    // destroy refuses nothing it should keep either: the half-tagged decoys are not the trial's.
    let d = cli.run(&["--output", "json", "destroy", "live-trial", "--yes"]).ok();
    assert_eq!(d.json()["ok"], true);
    assert_eq!(tagged(&m.state()), Vec::<String>::new());
    assert_eq!(live_instances(&m.state()).len(), 3);
}

#[test]
fn bad_input_is_refused_with_exit_2_before_anything_is_made() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();

    let r = aws_create(&cli, "bad-type", &["--size", "z9.mega"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("\"z9.mega\"") && r.stderr.contains("eu-central-1") && r.stderr.contains("--size cpu"), "{}", r.stderr);

    let r = cli.run(&["--output", "json", "create", "bad-cidr", "--provider", "aws", "--ssh-from", "300.1.2.3/40"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("300.1.2.3/40"), "{}", r.stderr);

    let r = aws_create(&cli, "bad-image", &["--image", "ami-0fffffffffffffff0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("ami-0fffffffffffffff0"), "{}", r.stderr);

    let nocreds = m.cli().without_env("AWS_ACCESS_KEY_ID").without_env("AWS_SECRET_ACCESS_KEY");
    let r = aws_create(&nocreds, "no-creds", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no AWS credentials") && r.stderr.contains("AWS_PROFILE"), "{}", r.stderr);

    let state = m.state();
    assert!(state["instances"].as_array().unwrap().is_empty() && state["keys"].as_array().unwrap().is_empty());
    assert_eq!(state["groups"].as_array().unwrap().len(), 1, "only the default group: {}", state["groups"]);
    let writes: Vec<Value> = m
        .requests()
        .into_iter()
        .filter(|r| !r["action"].as_str().unwrap().starts_with("Describe"))
        .collect();
    assert!(writes.is_empty(), "nothing but reads: {writes:?}");
}

#[test]
fn no_capacity_in_one_zone_fails_over_to_the_next_and_says_so() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let ice = "We currently do not have sufficient c6i.2xlarge capacity in the Availability Zone you requested (eu-central-1a).";
    m.rules(json!([{"action": "RunInstances", "times": 1, "code": "InsufficientInstanceCapacity", "message": ice, "status": 500}]));
    let r = aws_create(&cli, "acme-ice", &[]).ok();
    assert_eq!(of_trial(&m.state()["instances"], "acme-ice")[0]["az"], "eu-central-1b");
    assert!(r.stderr.contains("no c6i.2xlarge capacity in eu-central-1a") && r.stderr.contains("eu-central-1b"), "{}", r.stderr);
    let subnets: Vec<String> = m.actions("RunInstances").iter().map(|p| p["NetworkInterface.1.SubnetId"].as_str().unwrap().to_string()).collect();
    assert_eq!(subnets.len(), 2);
    assert_ne!(subnets[0], subnets[1]);
}

#[test]
fn no_capacity_anywhere_says_what_to_do_and_leaves_nothing() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    m.rules(json!([{"action": "RunInstances", "times": 10, "code": "InsufficientInstanceCapacity", "message": "no capacity", "status": 500}]));
    let r = aws_create(&cli, "acme-full", &["--size", "gpu"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("no g4dn.xlarge free in eu-central-1")
            && r.stderr.contains("eu-central-1a, eu-central-1b, eu-central-1c")
            && r.stderr.contains("another region"),
        "{}",
        r.stderr
    );
    assert_eq!(tagged(&m.state()), Vec::<String>::new(), "the group and key made for it are gone");
}

#[test]
fn a_gpu_quota_of_zero_names_the_quota_and_how_to_request_it() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let aws = "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.";
    m.rules(json!([{"action": "RunInstances", "when": {"InstanceType": "g4dn.xlarge"}, "times": 5, "code": "VcpuLimitExceeded", "message": aws}]));
    let r = aws_create(&cli, "acme-quota", &["--size", "gpu"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for want in ["Running On-Demand G and VT instances", "L-DB2E81BA", "request-service-quota-increase", "Service Quotas"] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }
    assert_eq!(m.actions("RunInstances").len(), 1, "a quota is not retried in other zones");
    assert_eq!(tagged(&m.state()), Vec::<String>::new());
}

#[test]
fn a_missing_permission_is_named_with_the_policy_to_fix_it() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    m.rules(json!([{"action": "CreateSecurityGroup", "times": 5, "code": "UnauthorizedOperation", "status": 403,
        "message": "You are not authorized to perform this operation."}]));
    let r = aws_create(&cli, "acme-iam", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("\"ec2:CreateSecurityGroup\"") && r.stderr.contains("README.md"), "{}", r.stderr);
    assert_eq!(tagged(&m.state()), Vec::<String>::new(), "the key pair made before is deleted again");
}

/// Every munero-expires tag of a trial: instance, volume, group, key pair.
/// moto's addresses answer nothing: point the trial's on-VM half at a closed local port.
fn unreachable_vm(cli: &Cli, trial: &str) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rec = cli.trial_dir(trial).join("trial.toml");
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    t.insert("ipv4".into(), "127.0.0.1".into());
    t.insert("ssh_port".into(), toml::Value::Integer(closed.into()));
    std::fs::write(&rec, toml::to_string(&t).unwrap()).unwrap();
}

fn expiry_tags(state: &Value, trial: &str) -> Vec<String> {
    let inst = live_instances(state).into_iter().find(|i| i["tags"]["munero-trial"] == trial).unwrap().clone();
    let vol = state["volumes"].as_array().unwrap().iter().find(|v| v["attachments"][0] == inst["id"]).unwrap().clone();
    [&inst, &vol, of_trial(&state["groups"], trial)[0], of_trial(&state["keys"], trial)[0]]
        .iter()
        .map(|x| x["tags"]["munero-expires"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn extend_moves_the_expiry_tag_of_every_resource_including_the_root_volume() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let old = aws_create(&cli, "acme-ext", &["--days", "3"]).ok().json()["expires_unix"].as_i64().unwrap();
    assert_eq!(expiry_tags(&m.state(), "acme-ext"), vec![old.to_string(); 4]);
    unreachable_vm(&cli, "acme-ext");
    let r = cli.run(&["extend", "acme-ext", "--days", "2"]);
    assert_eq!(r.code, 1, "the VM half fails here: {}", r.stderr);
    assert_eq!(expiry_tags(&m.state(), "acme-ext"), vec![(old + 2 * 86_400).to_string(); 4]);
}

#[test]
fn the_dry_run_plan_is_the_plan_that_runs_and_changes_nothing() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let expires = rfc3339(now_unix() + 5 * 86400);
    let dry = aws_create(&cli, "same-plan", &["--size", "gpu", "--location", "eu-central-1c", "--expires", &expires, "--dry-run"]).ok();
    let writes = m.requests().into_iter().filter(|r| !r["action"].as_str().unwrap().starts_with("Describe")).count();
    assert_eq!(writes, 0, "a dry run only reads");
    let real = aws_create(&cli, "same-plan", &["--size", "gpu", "--location", "eu-central-1c", "--expires", &expires]).ok();
    let strip = |d: &Value| -> Vec<Value> {
        d["plan"].as_array().unwrap().iter().map(|s| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("fingerprint");
            s
        }).collect()
    };
    assert_eq!(strip(&dry.json()), strip(&real.json()));
    assert_eq!(of_trial(&m.state()["instances"], "same-plan")[0]["az"], "eu-central-1c", "--location as a zone places it there");
}

#[test]
fn a_trial_in_another_region_and_subnet_is_made_there_listed_and_torn_down_there() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli(); // AWS_REGION=eu-central-1
    let net = m.subnet("us-west-2");
    let subnet = net["subnet"].as_str().unwrap();
    let soon = rfc3339(now_unix() + 3600);
    let dry = aws_create(&cli, "west", &["--location", "us-west-2", "--subnet", subnet, "--expires", &soon, "--dry-run"]).ok();
    assert!(dry.stdout.contains(&format!("location=us-west-2 subnet={subnet}")), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("in the network of subnet {subnet}")), "{}", dry.stdout);
    let doc = aws_create(&cli, "west", &["--location", "us-west-2", "--subnet", subnet, "--expires", &soon]).ok().json();
    aws_create(&cli, "home", &["--days", "5"]).ok();

    let west = m.state_in("us-west-2");
    let i = of_trial(&west["instances"], "west");
    assert_eq!(i.len(), 1, "{west}");
    assert_eq!((i[0]["subnet"].as_str(), i[0]["az"].as_str()), (Some(subnet), net["az"].as_str()));
    assert_eq!(i[0]["image"], NEWEST_AMD64, "the region's newest Canonical image");
    let g = of_trial(&west["groups"], "west");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["vpc"], net["vpc"], "the group is in the subnet's VPC, not the default one");
    assert_eq!(i[0]["groups"], json!([g[0]["id"]]));
    assert_eq!(of_trial(&west["keys"], "west").len(), 1);
    let home = m.state();
    assert!(of_trial(&home["instances"], "west").is_empty() && of_trial(&home["groups"], "west").is_empty(), "nothing in the default region");
    assert_eq!(of_trial(&home["instances"], "home").len(), 1);
    let rec = std::fs::read_to_string(cli.trial_dir("west").join("trial.toml")).unwrap();
    assert!(rec.contains(&format!("subnet = \"{subnet}\"")) && rec.contains("location = \"us-west-2\""), "{rec}");

    // status asks both regions: the default one and the one the record names.
    let st = cli.run(&["--output", "json", "status"]).ok().json();
    let row = |t: &str| st["trials"].as_array().unwrap().iter().find(|r| r["trial"] == t).cloned().unwrap();
    assert_eq!((row("west")["state"].as_str(), row("west")["ipv4"].clone()), (Some("running"), doc["ipv4"].clone()));
    assert_eq!(row("home")["state"], "running");

    // extend relabels in the trial's region.
    let old = doc["expires_unix"].as_i64().unwrap();
    assert_eq!(expiry_tags(&m.state_in("us-west-2"), "west"), vec![old.to_string(); 4]);
    unreachable_vm(&cli, "west");
    let r = cli.run(&["extend", "west", "--days", "1"]);
    assert_eq!(r.code, 1, "the VM half fails here: {}", r.stderr);
    assert_eq!(expiry_tags(&m.state_in("us-west-2"), "west"), vec![(old + 86_400).to_string(); 4]);

    // A scheduled teardown on a machine without the records finds the region only when told.
    let at = rfc3339(now_unix() + 3 * 86400);
    let elsewhere = m.cli();
    let d = elsewhere.run(&["--output", "json", "teardown", "--expired", "--at", &at, "--dry-run"]).ok().json();
    assert_eq!(d["expired"], json!([]), "{d}");
    let elsewhere = elsewhere.env("MUNERO_AWS_REGIONS", "us-west-2, eu-central-1");
    let d = elsewhere.run(&["--output", "json", "teardown", "--expired", "--at", &at, "--dry-run"]).ok().json();
    assert_eq!(d["expired"], json!(["west"]), "{d}");

    // The operator's teardown: the expired trial goes in its region, the live one stays.
    let t = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok().json();
    assert_eq!((t["ok"].as_bool(), t["destroyed"].clone()), (Some(true), json!(["west"])), "{t}");
    assert_eq!(tagged(&m.state_in("us-west-2")), Vec::<String>::new());
    assert_eq!(of_trial(&m.state()["instances"], "home").iter().filter(|i| i["state"] == "running").count(), 1);
    assert!(!cli.trial_dir("west").exists() && cli.trial_dir("home").exists());
}

#[test]
fn a_bad_location_or_subnet_is_refused_before_anything_is_made() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let net = m.subnet("us-west-2");
    let subnet = net["subnet"].as_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--location", "us-west-2z"], "not an availability zone of us-west-2"),
        (&["--location", "fsn1"], "not an AWS region or zone"),
        (&["--subnet", "subnet-zz"], "invalid --subnet"),
        (&["--subnet", subnet], "no such subnet in eu-central-1"),
        (&["--subnet", "subnet-0123456789abcdef0", "--location", "us-west-2"], "no such subnet in us-west-2"),
        (&["--subnet", subnet, "--location", "us-west-2c"], "drop --location or give --location"),
    ];
    for (args, says) in cases {
        let r = aws_create(&cli, "bad-place", args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let writes: Vec<Value> = m.requests().into_iter().filter(|r| !r["action"].as_str().unwrap().starts_with("Describe")).collect();
    assert_eq!(writes, Vec::<Value>::new(), "only reads");
    assert!(!cli.trial_dir("bad-place").exists());
    let h = cli.run(&["create", "bad-place", "--provider", "hetzner", "--ssh-from", SSH_FROM, "--subnet", subnet, "--dry-run"]);
    assert_eq!(h.code, 2, "{}", h.stderr);
    assert!(h.stderr.contains("--subnet is for --provider aws"), "{}", h.stderr);
}

#[test]
fn teardown_covers_hetzner_and_aws_in_one_pass() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let fake = Fake::start();
    let cli = m.cli().env("HCLOUD_TOKEN", "test-token-not-secret").env("HCLOUD_ENDPOINT", &fake.endpoint);
    let soon = rfc3339(now_unix() + 3600);
    aws_create(&cli, "aws-old", &["--expires", &soon]).ok();
    cli.create("hetzner-old", &["--expires", &soon]).ok();
    let st = cli.run(&["--output", "json", "status"]).ok().json();
    let mut rows: Vec<String> = st["trials"].as_array().unwrap().iter().map(|r| format!("{} {}", r["provider"], r["state"])).collect();
    rows.sort();
    assert_eq!(rows, ["\"aws\" \"running\"", "\"hetzner\" \"running\""]);

    let at = rfc3339(now_unix() + 7200);
    let doc = cli.run(&["--output", "json", "teardown", "--expired", "--at", &at]).ok().json();
    let mut gone: Vec<String> = doc["destroyed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    gone.sort();
    assert_eq!(gone, ["aws-old", "hetzner-old"]);
    assert_eq!(tagged(&m.state()), Vec::<String>::new());
    assert!(fake.is_empty(), "{}", fake.state());
}

#[test]
fn user_data_over_16_kb_goes_gzipped_and_decodes_to_the_same_cloud_init() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    // 10 KB of certificate-like base64 that does not compress away: the text is over EC2's
    // 16 KB with it, its gzip well under.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let bytes: Vec<u8> = (0..7_500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
    let ca = cli.cwd.path().join("big-ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    let doc = aws_create(&cli, "acme-big", &["--trusted-ca", ca.to_str().unwrap()]).ok().json();
    assert!(doc["user_data_bytes"].as_u64().unwrap() > 16 * 1024, "{}", doc["user_data_bytes"]);
    let s = m.state();
    let i = of_trial(&s["instances"], "acme-big")[0];
    let raw = base64::engine::general_purpose::STANDARD.decode(i["user_data_b64"].as_str().unwrap()).unwrap();
    assert!(raw.starts_with(&[0x1f, 0x8b]) && raw.len() <= 16 * 1024, "gzipped, {} bytes", raw.len());
    let ud = user_data(i);
    assert!(ud.starts_with("#cloud-config\n") && ud.contains(lines[40]), "the CA travels in the gzipped user data");
    assert_eq!(ud.len() as u64, doc["user_data_bytes"].as_u64().unwrap());
}

#[test]
fn a_group_still_in_use_is_retried_until_free_and_given_up_on_at_the_deadline() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli().env("MUNERO_POLL_TIMEOUT_S", "2");
    aws_create(&cli, "acme-dep", &[]).ok();
    aws_create(&cli, "acme-stuck", &[]).ok();
    let in_use = |times: u32, group: &str| {
        json!({"action": "DeleteSecurityGroup", "when": {"GroupId": group}, "times": times, "code": "DependencyViolation",
               "message": format!("resource {group} has a dependent object")})
    };
    let s = m.state();
    let (dep, stuck) = (of_trial(&s["groups"], "acme-dep")[0]["id"].clone(), of_trial(&s["groups"], "acme-stuck")[0]["id"].clone());
    m.rules(json!([in_use(3, dep.as_str().unwrap()), in_use(100_000, stuck.as_str().unwrap())]));

    cli.run(&["--output", "json", "destroy", "acme-dep", "--yes"]).ok();
    assert!(of_trial(&m.state()["groups"], "acme-dep").is_empty());
    assert_eq!(m.actions("DeleteSecurityGroup").iter().filter(|p| p["GroupId"] == dep).count(), 4, "three refusals, then deleted");

    let r = cli.run(&["--output", "json", "destroy", "acme-stuck", "--yes"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("still in use (DependencyViolation)") && r.stderr.contains("destroy"), "{}", r.stderr);
    assert_eq!(of_trial(&m.state()["groups"], "acme-stuck").len(), 1, "kept, still tagged, for the next destroy");
}

#[test]
fn a_snapshot_is_an_ami_with_tagged_ebs_snapshots_that_restore_uses_and_destroy_removes() {
    let Some(m) = Moto::start() else { return };
    m.reset();
    let cli = m.cli();
    let made = aws_create(&cli, "snap-aws", &["--days", "3"]).ok().json();
    let first = made["resources"]["server_id"].as_str().unwrap().to_string();
    let expires = made["expires_unix"].as_i64().unwrap().to_string();

    let snap = cli.run(&["--output", "json", "snapshot", "snap-aws", "--name", "before the demo"]).ok().json();
    let ami = snap["snapshot"]["id"].as_str().unwrap().to_string();
    assert!(ami.starts_with("ami-"), "{snap}");
    let s = m.state();
    let images = of_trial(&s["images"], "snap-aws");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["id"], ami.as_str());
    let ebs = of_trial(&s["snapshots"], "snap-aws");
    assert!(!ebs.is_empty(), "the image's EBS snapshots carry the trial's tags: {s}");
    for x in images.iter().chain(&ebs) {
        assert_eq!((x["tags"]["munero-managed"].as_str(), x["tags"]["munero-expires"].as_str()), (Some("true"), Some(expires.as_str())));
    }
    let sent = &m.actions("CreateImage")[0];
    assert_eq!(sent["InstanceId"], first.as_str());
    let kinds: Vec<&str> = ["TagSpecification.1.ResourceType", "TagSpecification.2.ResourceType"].iter().filter_map(|k| sent[*k].as_str()).collect();
    assert_eq!(kinds, ["image", "snapshot"], "tagged in the same call: {sent}");

    let st = cli.run(&["--output", "json", "status", "snap-aws"]).ok().json();
    let listed = &st["trials"][0]["snapshots"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "one snapshot per image, not per EBS snapshot: {st}");
    assert_eq!(listed[0]["id"], ami.as_str());

    // restore: a new instance from the image, in the trial's group, with the pinned host key.
    let r = cli.run(&["restore", "snap-aws"]);
    assert_eq!(r.code, 2, "the instance still exists: {}", r.stderr);
    let restored = cli.run(&["--output", "json", "restore", "snap-aws", "--replace", "--yes"]).ok().json();
    let s = m.state();
    let live: Vec<&Value> = of_trial(&s["instances"], "snap-aws").into_iter().filter(|i| i["state"] != "terminated").collect();
    assert_eq!(live.len(), 1, "{s}");
    assert_ne!(live[0]["id"], first.as_str());
    assert_eq!(live[0]["image"], ami.as_str(), "made from the snapshot");
    assert_eq!(restored["server_id"], live[0]["id"]);
    let group = of_trial(&s["groups"], "snap-aws")[0]["id"].clone();
    assert_eq!(live[0]["groups"], json!([group]));
    let host_pub = std::fs::read_to_string(cli.trial_dir("snap-aws").join("ssh_host_ed25519_key.pub")).unwrap();
    assert!(user_data(live[0]).contains(host_pub.trim()), "the pinned host key goes back");

    // destroy: the image and its EBS snapshots go too, each looked up again for the receipt.
    let out = cli.run(&["--output", "json", "destroy", "snap-aws", "--yes"]).ok().json();
    assert_eq!(out["receipt"]["complete"], true, "{out}");
    let res = out["receipt"]["receipt"]["resources"].as_array().unwrap();
    let snap_row = res.iter().find(|g| g["id"] == ami.as_str()).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(snap_row["lookup"]["gone"], true, "{snap_row}");
    assert!(snap_row["lookup"]["request"].as_str().unwrap().starts_with("DescribeImages"), "{snap_row}");
    assert_eq!(tagged(&m.state()), Vec::<String>::new(), "nothing tagged is left");
    assert_eq!(m.actions("DeregisterImage").len(), 1);
    assert_eq!(m.actions("DeleteSnapshot").len(), ebs.len());
}
