//! The default image: the newest Ubuntu 24.04 amd64 AMI that Canonical publishes in the region,
//! found by owner and name (no SSM parameter: one fewer permission and service).

/// Canonical's AWS account.
pub const CANONICAL: &str = "099720109477";
/// gp3-backed images first; older releases were published as hvm-ssd.
pub const NAME_PATTERNS: [&str; 2] =
    ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-*"];
/// What the trial records as its image when the AMI is looked up at create time.
pub const DEFAULT_IMAGE: &str = "ubuntu-24.04";

/// One candidate: (id, name, creation date as AWS writes it, architecture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub created: String,
    pub arch: String,
}

/// The newest x86_64 image. Creation dates are ISO 8601 in UTC, so they sort as text; the name
/// (which ends in the build date) breaks ties.
pub fn newest(cands: &[Candidate]) -> Option<&Candidate> {
    cands.iter().filter(|c| c.arch == "x86_64").max_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, created: &str, arch: &str) -> Candidate {
        Candidate { id: id.into(), name: format!("ubuntu-noble-{created}"), created: created.into(), arch: arch.into() }
    }

    #[test]
    fn the_newest_amd64_image_wins_over_a_newer_arm_one() {
        let all = [
            c("ami-old", "2024-05-01T00:00:00.000Z", "x86_64"),
            c("ami-arm", "2025-09-01T00:00:00.000Z", "arm64"),
            c("ami-new", "2025-06-01T00:00:00.000Z", "x86_64"),
        ];
        assert_eq!(newest(&all).unwrap().id, "ami-new");
        assert_eq!(newest(&all[1..2]), None);
    }
}
