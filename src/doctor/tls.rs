//! Just enough X.509 to report on a server's certificate: its expiry and whether it signed
//! itself. Walks the DER structure; verification itself is rustls's job.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// What doctor says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub not_after: OffsetDateTime,
    pub self_signed: bool,
}

/// Reads the leaf certificate's validity end and compares issuer with subject.
pub fn summarize(der: &[u8]) -> Option<CertSummary> {
    let (cert, _) = read_tlv(der, 0x30)?;
    let (tbs, _) = read_tlv(cert, 0x30)?;
    let mut rest = tbs;
    // An explicit version ([0]) comes first in v3 certificates.
    if rest.first() == Some(&0xa0) {
        rest = read_tlv(rest, 0xa0)?.1;
    }
    let (_serial, rest) = read_tlv(rest, 0x02)?;
    let (_algorithm, rest) = read_tlv(rest, 0x30)?;
    let (issuer, rest) = read_raw(rest, 0x30)?;
    let (validity, rest) = read_tlv(rest, 0x30)?;
    let (subject, _) = read_raw(rest, 0x30)?;
    let (_not_before, after) = read_any(validity)?;
    let (tag, value, _) = after_tlv(after)?;
    Some(CertSummary {
        not_after: parse_time(tag, value)?,
        self_signed: issuer == subject,
    })
}

/// Days from `now` until the certificate expires (negative once expired).
pub fn days_left(summary: &CertSummary, now: OffsetDateTime) -> i64 {
    (summary.not_after - now).whole_days()
}

fn read_len(input: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first < 0x80 {
        return Some((first as usize, rest));
    }
    let count = (first & 0x7f) as usize;
    if count == 0 || count > 4 || rest.len() < count {
        return None;
    }
    let len = rest[..count]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some((len, &rest[count..]))
}

fn after_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (len, rest) = read_len(rest)?;
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The value of the next element, which must carry `tag`, and what follows it.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, value, rest) = after_tlv(input)?;
    (found == tag).then_some((value, rest))
}

/// The whole next element (tag and length included), for comparing names byte for byte.
fn read_raw(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (_, _, rest) = after_tlv(input)?;
    (input.first() == Some(&tag)).then(|| (&input[..input.len() - rest.len()], rest))
}

fn read_any(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, value, rest) = after_tlv(input)?;
    Some((value, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, value: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| s.parse::<u32>().ok();
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(text.get(..2)?)? as i32;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (digits(text.get(..4)?)? as i32, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let date = Date::from_calendar_date(
        year,
        Month::try_from(field(0)? as u8).ok()?,
        field(2)? as u8,
    )
    .ok()?;
    let time = Time::from_hms(
        field(4)? as u8,
        field(6)? as u8,
        field(8).unwrap_or(0) as u8,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms() {
        let t = parse_time(0x17, b"300101120000Z").unwrap();
        assert_eq!((t.year(), t.hour()), (2030, 12));
        let t = parse_time(0x18, b"20491231235959Z").unwrap();
        assert_eq!((t.year(), t.month() as u8, t.second()), (2049, 12, 59));
        assert!(parse_time(0x17, b"garbage").is_none());
    }

    #[test]
    fn garbage_is_none() {
        assert!(summarize(b"\x30\x03\x02\x01\x00").is_none());
        assert!(summarize(b"").is_none());
    }
}
