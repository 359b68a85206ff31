#!/usr/bin/env python3
"""What moto holds, read and seeded with boto3 (moto's own dependency): the tests' view of EC2
that does not go through the code under test. Test-only.

  ec2.py ENDPOINT state [REGION]
                             -> JSON: instances (tags, type, state, metadata options, user
                                  data, security groups), volumes, security groups (ingress),
                                  key pairs, images, snapshots (of REGION, default eu-central-1)
  ec2.py ENDPOINT subnet REGION -> a VPC that is not the default one, with one subnet in the
                                  region's second zone: {"vpc", "subnet", "az"}
  ec2.py ENDPOINT seed JSON    -> decoys: {"instances": [{"tags": {...}}], "groups": [...],
                                  "keys": [...]}; prints their ids
"""
import base64
import json
import sys

import boto3

REGION = "eu-central-1"


def client(endpoint, region=REGION):
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def tags(x):
    return {t["Key"]: t["Value"] for t in x.get("Tags", [])}


def primary(i):
    return next((n for n in i.get("NetworkInterfaces", []) if n.get("Attachment", {}).get("DeviceIndex") == 0), None)


def state(c):
    out = {"instances": [], "volumes": [], "groups": [], "keys": [], "images": [], "snapshots": []}
    for r in c.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            ud = c.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")
            raw = ud.get("UserData", {}).get("Value")
            out["instances"].append({
                "id": i["InstanceId"], "type": i["InstanceType"], "state": i["State"]["Name"], "tags": tags(i),
                "image": i["ImageId"], "key_name": i.get("KeyName"), "subnet": i.get("SubnetId"),
                "az": i["Placement"]["AvailabilityZone"],
                # The primary interface's groups (what filters its traffic; moto leaves the
                # instance's own list empty when the groups came with the interface).
                "groups": [g["GroupId"] for g in (primary(i) or i).get("Groups", i.get("SecurityGroups", []))],
                "metadata": i.get("MetadataOptions", {}),
                "user_data_b64": raw,
                "shutdown_behavior": c.describe_instance_attribute(
                    InstanceId=i["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
                ).get("InstanceInitiatedShutdownBehavior", {}).get("Value"),
                "block_devices": [{"device": b["DeviceName"], "volume": b["Ebs"]["VolumeId"],
                                   "delete_on_termination": b["Ebs"].get("DeleteOnTermination")}
                                  for b in i.get("BlockDeviceMappings", [])],
            })
    for v in c.describe_volumes()["Volumes"]:
        out["volumes"].append({"id": v["VolumeId"], "size": v["Size"], "type": v["VolumeType"],
                               "encrypted": v["Encrypted"], "state": v["State"], "tags": tags(v),
                               "attachments": [a["InstanceId"] for a in v.get("Attachments", [])]})
    for g in c.describe_security_groups()["SecurityGroups"]:
        out["groups"].append({"id": g["GroupId"], "name": g["GroupName"], "vpc": g.get("VpcId"), "tags": tags(g),
                              "ingress": g["IpPermissions"], "egress": g["IpPermissionsEgress"]})
    for k in c.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]:
        out["keys"].append({"id": k.get("KeyPairId"), "name": k["KeyName"], "tags": tags(k),
                            "type": k.get("KeyType"), "public_key": k.get("PublicKey")})
    for i in c.describe_images(Owners=["self"])["Images"]:
        out["images"].append({"id": i["ImageId"], "name": i["Name"], "tags": tags(i)})
    for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        out["snapshots"].append({"id": s["SnapshotId"], "tags": tags(s)})
    return out


def spec(kind, t):
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in t.items()]}] if t else []


def seed(c, doc):
    ids = {"instances": [], "groups": [], "keys": []}
    image = "ami-0a0000000000a0702"
    for g in doc.get("groups", []):
        r = c.create_security_group(GroupName=g["name"], Description="decoy", TagSpecifications=spec("security-group", g.get("tags", {})))
        ids["groups"].append(r["GroupId"])
    for k in doc.get("keys", []):
        material = k.get("public_key") or "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC9nDJm1T8zeIJ4vsuCsxCS0bEFWHDBMSCdANDk5qHaI decoy"
        r = c.import_key_pair(KeyName=k["name"], PublicKeyMaterial=material.encode(), TagSpecifications=spec("key-pair", k.get("tags", {})))
        ids["keys"].append(r["KeyPairId"])
    for i in doc.get("instances", []):
        r = c.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            TagSpecifications=spec("instance", i.get("tags", {})))
        ids["instances"].append(r["Instances"][0]["InstanceId"])
    return ids


def subnet(c):
    vpc = c.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    az = c.describe_availability_zones()["AvailabilityZones"][1]["ZoneName"]
    s = c.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=az)["Subnet"]
    return {"vpc": vpc, "subnet": s["SubnetId"], "az": az}


def main():
    endpoint, cmd = sys.argv[1], sys.argv[2]
    region = sys.argv[3] if cmd in ("state", "subnet") and len(sys.argv) > 3 else REGION
    c = client(endpoint, region)
    if cmd == "state":
        print(json.dumps(state(c), default=str))
    elif cmd == "subnet":
        print(json.dumps(subnet(c)))
    elif cmd == "seed":
        print(json.dumps(seed(c, json.loads(sys.argv[3]))))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
