//! What smoke reports about the site's certificate: who issued it and until when it is valid,
//! read from the leaf certificate's DER (only the few fields needed, so no X.509 library).

use anyhow::{anyhow, bail, Result};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// The issuer's common name (else its organisation).
    pub issuer: String,
    pub not_after: OffsetDateTime,
}

/// One DER element: (tag, content, rest).
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first().ok_or_else(|| anyhow!("truncated certificate"))?;
    let (&first, b) = b.split_first().ok_or_else(|| anyhow!("truncated certificate"))?;
    let (len, b) = if first < 0x80 {
        (first as usize, b)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            bail!("bad length in certificate");
        }
        (b[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize), &b[n..])
    };
    if b.len() < len {
        bail!("truncated certificate");
    }
    Ok((tag, &b[..len], &b[len..]))
}

pub fn leaf_info(der: &[u8]) -> Result<LeafInfo> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let (mut tag, mut field, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        // explicit version; the serial follows
        (tag, field, rest) = tlv(rest)?;
    }
    let _ = (tag, field);
    let (_, _signature, rest) = tlv(rest)?;
    let (_, issuer, rest) = tlv(rest)?;
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after) = tlv(validity)?;
    let (time_tag, not_after, _) = tlv(after)?;
    Ok(LeafInfo { issuer: name_of(issuer)?, not_after: asn1_time(time_tag, not_after)? })
}

/// CN of a Name, else O.
fn name_of(mut name: &[u8]) -> Result<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    let (mut cn, mut org) = (None, None);
    while !name.is_empty() {
        let (_, set, rest) = tlv(name)?;
        name = rest;
        let (_, attr, _) = tlv(set)?;
        let (_, oid, value) = tlv(attr)?;
        let (_, text, _) = tlv(value)?;
        let text = String::from_utf8_lossy(text).into_owned();
        if oid == CN {
            cn = Some(text);
        } else if oid == O {
            org = Some(text);
        }
    }
    Ok(cn.or(org).unwrap_or_else(|| "(unnamed issuer)".into()))
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn asn1_time(tag: u8, b: &[u8]) -> Result<OffsetDateTime> {
    let s = std::str::from_utf8(b)?;
    let s = s.strip_suffix('Z').ok_or_else(|| anyhow!("certificate time {s:?} is not UTC"))?;
    let digits = |r: std::ops::Range<usize>| -> Result<u32> {
        s.get(r).and_then(|d| d.parse().ok()).ok_or_else(|| anyhow!("bad certificate time {s:?}"))
    };
    let (year, off) = match (tag, s.len()) {
        (0x17, 12) => {
            let y = digits(0..2)? as i32;
            (if y >= 50 { 1900 + y } else { 2000 + y }, 2)
        }
        (0x18, 14) => (digits(0..4)? as i32, 4),
        _ => bail!("unsupported certificate time {s:?}"),
    };
    let month = Month::try_from(digits(off..off + 2)? as u8)?;
    let date = Date::from_calendar_date(year, month, digits(off + 2..off + 4)? as u8)?;
    let time = Time::from_hms(digits(off + 4..off + 6)? as u8, digits(off + 6..off + 8)? as u8, digits(off + 8..off + 10)? as u8)?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_issuer_and_expiry_of_a_real_certificate_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "45"])
            .args(["-subj", "/O=Munero Test/CN=Munero Test Root", "-outform", "DER"])
            .arg("-keyout")
            .arg(dir.path().join("k.pem"))
            .arg("-out")
            .arg(dir.path().join("c.der"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let info = leaf_info(&std::fs::read(dir.path().join("c.der")).unwrap()).unwrap();
        assert_eq!(info.issuer, "Munero Test Root");
        let days = (info.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((44..=45).contains(&days), "{days}");
    }

    #[test]
    fn both_time_forms_are_read_and_garbage_is_an_error() {
        assert_eq!(asn1_time(0x17, b"261231235959Z").unwrap().year(), 2026);
        assert_eq!(asn1_time(0x18, b"20510101000000Z").unwrap().year(), 2051);
        assert!(asn1_time(0x17, b"2612").is_err());
        assert!(leaf_info(&[0x30, 0x05, 0x01]).is_err());
    }
}
