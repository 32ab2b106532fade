//! Checks the gateway's TLS certificate and key before they become a Kubernetes secret: both
//! PEM, the key belongs to the certificate, the certificate covers the gateway domain (wildcards
//! included) and is in date. Uses the openssl CLI; never reads the key into this process.

use std::path::Path;
use std::time::Duration;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::exec::{self, Cmd};
use crate::error::Problem;
use crate::report::Report;

/// Days before expiry from which a certificate gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

const OPENSSL_DEADLINE: Duration = Duration::from_secs(20);

/// What the checks learned about a good certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub subject: String,
    /// The DNS names it covers, from subjectAltName.
    pub names: Vec<String>,
    pub not_after: OffsetDateTime,
    pub days_left: i64,
}

/// Runs every check, the first failure a refusal naming the file and the fix.
pub fn check(
    cert: &Path,
    key: &Path,
    domain: &str,
    now: OffsetDateTime,
    report: &dyn Report,
) -> anyhow::Result<CertificateSummary> {
    if crate::programs::find_on_path("openssl").is_none() {
        return Err(Problem::user(
            "openssl is not on PATH; duo-selfhost uses it to check --tls-cert and --tls-key",
        )
        .hint("install it (Debian/Ubuntu: apt-get install openssl) and run the command again")
        .into());
    }
    for (flag, path) in [("--tls-cert", cert), ("--tls-key", key)] {
        if let Err(e) = std::fs::File::open(path) {
            return Err(
                Problem::user(format!("cannot read {flag} {}: {e}", path.display()))
                    .hint(format!(
                        "check the path and its permissions: ls -l {}",
                        path.display()
                    ))
                    .into(),
            );
        }
    }
    let cert_arg = path_arg(cert);
    let key_arg = path_arg(key);

    let dates = openssl(
        &[
            "x509",
            "-in",
            &cert_arg,
            "-noout",
            "-subject",
            "-startdate",
            "-enddate",
        ],
        report,
    )?;
    if !dates.success() {
        return Err(Problem::user(format!(
            "--tls-cert {} is not a PEM certificate: {}",
            cert.display(),
            first_line(&dates.stderr)
        ))
        .hint(format!(
            "pass the certificate in PEM form (it starts with -----BEGIN CERTIFICATE-----); from DER: openssl x509 -inform der -in {} -out gateway.pem",
            cert.display()
        ))
        .into());
    }

    // -passin with an empty password: an encrypted key fails here instead of prompting.
    let key_public = openssl(
        &["pkey", "-in", &key_arg, "-pubout", "-passin", "pass:"],
        report,
    )?;
    if !key_public.success() {
        return Err(Problem::user(format!(
            "--tls-key {} is not an unencrypted PEM private key: {}",
            key.display(),
            first_line(&key_public.stderr)
        ))
        .hint(format!(
            "pass the key in PEM form without a passphrase; to remove one: openssl pkey -in {} -out gateway.key",
            key.display()
        ))
        .into());
    }
    let cert_public = openssl(&["x509", "-in", &cert_arg, "-noout", "-pubkey"], report)?;
    if !cert_public.success() || cert_public.stdout.trim() != key_public.stdout.trim() {
        return Err(Problem::user(format!(
            "the key in {} does not belong to the certificate in {}",
            key.display(),
            cert.display()
        ))
        .hint("pass the private key that was generated with this certificate's request")
        .into());
    }

    let names = subject_alt_names(&cert_arg, report)?;
    let host = openssl(
        &["x509", "-in", &cert_arg, "-noout", "-checkhost", domain],
        report,
    )?;
    if !host.stdout.contains("does match") {
        let covered = if names.is_empty() {
            "no DNS names".to_string()
        } else {
            names.join(", ")
        };
        return Err(Problem::user(format!(
            "the certificate in {} does not cover the gateway domain {domain} (it covers {covered})",
            cert.display()
        ))
        .hint(format!(
            "use a certificate whose subjectAltName includes DNS:{domain} or a wildcard for its parent domain"
        ))
        .into());
    }

    let field = |name: &str| {
        dates
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let subject = field("subject=");
    let not_before = parse_openssl_date(&field("notBefore="));
    let not_after = parse_openssl_date(&field("notAfter="));
    let (Some(not_before), Some(not_after)) = (not_before, not_after) else {
        return Err(Problem::tool(format!(
            "could not read the validity dates of {} from openssl's output",
            cert.display()
        ))
        .into());
    };
    if now >= not_after {
        return Err(Problem::user(format!(
            "the certificate in {} expired on {}",
            cert.display(),
            human_date(not_after)
        ))
        .hint(format!(
            "renew the certificate for {domain} and pass the new one with --tls-cert"
        ))
        .into());
    }
    if now < not_before {
        return Err(Problem::user(format!(
            "the certificate in {} is not valid before {}",
            cert.display(),
            human_date(not_before)
        ))
        .hint("check this machine's clock, or wait until the certificate's start date")
        .into());
    }
    let days_left = (not_after - now).whole_days();
    Ok(CertificateSummary {
        subject,
        names,
        not_after,
        days_left,
    })
}

/// A date as the error messages show it: `2026-02-01 00:00 UTC`.
pub fn human_date(when: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        when.year(),
        u8::from(when.month()),
        when.day(),
        when.hour(),
        when.minute()
    )
}

fn openssl(args: &[&str], report: &dyn Report) -> anyhow::Result<exec::Captured> {
    let cmd = Cmd::new("openssl", args.iter().copied());
    Ok(exec::query(&cmd, OPENSSL_DEADLINE, report)?)
}

fn subject_alt_names(cert_arg: &str, report: &dyn Report) -> anyhow::Result<Vec<String>> {
    let out = openssl(
        &["x509", "-in", cert_arg, "-noout", "-ext", "subjectAltName"],
        report,
    )?;
    Ok(out
        .stdout
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .filter_map(|entry| entry.trim().strip_prefix("DNS:").map(str::to_string))
        .collect())
}

/// openssl reads an argument starting with `-` as an option; `./` keeps a path a path.
fn path_arg(path: &Path) -> String {
    let text = path.to_string_lossy().to_string();
    if text.starts_with('-') {
        format!("./{text}")
    } else {
        text
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("openssl gave no reason")
        .trim()
        .to_string()
}

/// Parses openssl's default date form, `Feb  1 00:00:00 2020 GMT`.
pub fn parse_openssl_date(text: &str) -> Option<OffsetDateTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [month, day, clock, year, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = match *month {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    };
    let date = Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut hms = clock.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let time = Time::from_hms(h, m, s).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_dates() {
        let when = parse_openssl_date("Feb  1 00:00:00 2020 GMT").unwrap();
        assert_eq!(human_date(when), "2020-02-01 00:00 UTC");
        let when = parse_openssl_date("Dec 25 09:26:18 2026 GMT").unwrap();
        assert_eq!(human_date(when), "2026-12-25 09:26 UTC");
        assert_eq!(parse_openssl_date("2026-12-25 09:26:18Z"), None);
        assert_eq!(parse_openssl_date("Foo 25 09:26:18 2026 GMT"), None);
    }

    #[test]
    fn dash_paths_stay_paths() {
        assert_eq!(path_arg(Path::new("-cert.pem")), "./-cert.pem");
        assert_eq!(path_arg(Path::new("/tmp/c.pem")), "/tmp/c.pem");
    }
}
