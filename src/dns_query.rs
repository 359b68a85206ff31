//! One DNS question over UDP to a named server: what an authoritative nameserver answers for a
//! name's A record, before a CA is asked to check it (the operator's own resolver may cache an
//! older answer). Only what that needs: A queries, answers read, compression pointers followed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The A records `server` gives for `name` (no recursion asked: an authoritative answer).
pub async fn query_a(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<Ipv4Addr>> {
    let id = (std::process::id() as u16) ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos() as u16);
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.send_to(&build_query(id, name)?, server).await.with_context(|| format!("asking {server} for {name}"))?;
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(timeout, sock.recv_from(&mut buf))
        .await
        .map_err(|_| anyhow!("{server} did not answer for {name} within {}s", timeout.as_secs()))??;
    parse_a_answers(id, &buf[..n])
}

fn build_query(id: u16, name: &str) -> Result<Vec<u8>> {
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // no flags, one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            bail!("{name:?} is not a DNS name");
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    Ok(p)
}

/// Offset just past the (possibly compressed) name at `at`.
fn skip_name(p: &[u8], mut at: usize) -> Result<usize> {
    loop {
        let len = *p.get(at).ok_or_else(|| anyhow!("truncated DNS answer"))? as usize;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l => at += 1 + l,
        }
    }
}

fn parse_a_answers(id: u16, p: &[u8]) -> Result<Vec<Ipv4Addr>> {
    if p.len() < 12 || u16::from_be_bytes([p[0], p[1]]) != id {
        bail!("not an answer to our question");
    }
    let rcode = p[3] & 0x0f;
    if rcode == 3 {
        return Ok(vec![]); // NXDOMAIN
    }
    if rcode != 0 {
        bail!("the nameserver answered with error code {rcode}");
    }
    let (qd, an) = (u16::from_be_bytes([p[4], p[5]]), u16::from_be_bytes([p[6], p[7]]));
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(p, at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        at = skip_name(p, at)?;
        let h = p.get(at..at + 10).ok_or_else(|| anyhow!("truncated DNS answer"))?;
        let (rtype, rdlen) = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[8], h[9]]) as usize);
        let data = p.get(at + 10..at + 10 + rdlen).ok_or_else(|| anyhow!("truncated DNS answer"))?;
        if rtype == 1 && rdlen == 4 {
            out.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_is_encoded_as_labels_and_an_answer_with_a_pointer_is_read() {
        let q = build_query(0x1234, "t.example.com.").unwrap();
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..], b"\x01t\x07example\x03com\x00\x00\x01\x00\x01");
        // The same question answered: one CNAME-free A record whose name points at the question.
        let mut a = q.clone();
        a[2] = 0x84; // response, authoritative
        a[7] = 1; // one answer
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 95, 217, 1, 20]);
        assert_eq!(parse_a_answers(0x1234, &a).unwrap(), vec![Ipv4Addr::new(95, 217, 1, 20)]);
        assert!(parse_a_answers(0x9999, &a).is_err());
        let mut nx = q;
        nx[3] = 3;
        assert_eq!(parse_a_answers(0x1234, &nx).unwrap(), Vec::<Ipv4Addr>::new());
        assert!(build_query(1, "bad..name").is_err());
    }
}
