//! How quantities read in messages: a duration as "10 s" or "1.5 s", a size limit as "8 MiB".
//! One rule each, so doctor, the GitLab client and the HTTP body limits say them alike.

use std::time::Duration;

/// `10 s`, `1.5 s`: whole seconds without a decimal.
pub fn seconds_text(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if (secs - secs.round()).abs() < 0.05 {
        format!("{} s", secs.round() as u64)
    } else {
        format!("{secs:.1} s")
    }
}

/// `8 MiB` for a whole number of MiB, else `1234 bytes`.
pub fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_lose_the_decimal() {
        assert_eq!(seconds_text(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds_text(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds_text(Duration::from_millis(9800)), "9.8 s");
    }

    #[test]
    fn sizes_in_mib_only_when_whole() {
        assert_eq!(size_text(8 << 20), "8 MiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }
}
