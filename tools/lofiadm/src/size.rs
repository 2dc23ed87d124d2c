//! Byte counts on the command line (`-o`, `--sizelimit`, `-b`), written as
//! losetup(8) takes them: a decimal number with an optional suffix, `K`,
//! `M`, `G`, `T`, `P`, `E` or the same with `iB` (`KiB`, ...) for powers
//! of 1024, and `KB`, `MB`, ... for powers of 1000 (upper or lower case).

/// The value of `text` as illumos lofiadm's `convert_to_num` reads a
/// segment size (`-s`): a decimal number with an optional suffix `k` or
/// `K` (1024), `b` or `B` (512), `m` or `M` (1024^2), `g` or `G` (1024^3);
/// `None` if it is not one (or overflows).
pub fn parse_illumos(text: &str) -> Option<u64> {
    let (digits, multiplier) = match text.as_bytes().last()? {
        b'0'..=b'9' => (text, 1),
        b'k' | b'K' => (&text[..text.len() - 1], 1 << 10),
        b'b' | b'B' => (&text[..text.len() - 1], 512),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// The value of `text`, or why it is not a size.
pub fn parse(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!("'{text}' is not a number"));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let multiplier = multiplier(suffix).ok_or_else(|| format!("'{text}' has an unknown suffix"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// What a suffix multiplies by: 1 for none.
fn multiplier(suffix: &str) -> Option<u64> {
    let lower = suffix.to_ascii_lowercase();
    let (unit, rest) = match lower.char_indices().next() {
        None => return Some(1),
        Some((_, c)) => (c, &lower[c.len_utf8()..]),
    };
    let power = "kmgtpe".find(unit)? as u32 + 1;
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    base.checked_pow(power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_bytes() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("512"), Ok(512));
        assert_eq!(parse("17825792"), Ok(17 << 20));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("4k"), Ok(4096));
        assert_eq!(parse("4KiB"), Ok(4096));
        assert_eq!(parse("17MiB"), Ok(17 << 20));
        assert_eq!(parse("17m"), Ok(17 << 20));
        assert_eq!(parse("2G"), Ok(2 << 30));
        assert_eq!(parse("1TiB"), Ok(1 << 40));
        assert_eq!(parse("1P"), Ok(1 << 50));
        assert_eq!(parse("8E"), Ok(8 << 60));
    }

    #[test]
    fn decimal_suffixes() {
        assert_eq!(parse("4KB"), Ok(4000));
        assert_eq!(parse("3mb"), Ok(3_000_000));
        assert_eq!(parse("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn illumos_suffixes() {
        assert_eq!(parse_illumos("512"), Some(512));
        assert_eq!(parse_illumos("64k"), Some(65536));
        assert_eq!(parse_illumos("64K"), Some(65536));
        assert_eq!(parse_illumos("2b"), Some(1024));
        assert_eq!(parse_illumos("2B"), Some(1024));
        assert_eq!(parse_illumos("8m"), Some(8 << 20));
        assert_eq!(parse_illumos("1G"), Some(1 << 30));
        for bad in [
            "", "k", "1.5k", "-1", "+512", "1KB", "1KiB", "1x", " 1", "0x200",
        ] {
            assert_eq!(parse_illumos(bad), None, "{bad:?}");
        }
        assert_eq!(parse_illumos("99999999999999999999"), None);
        assert_eq!(parse_illumos("99999999999999g"), None);
    }

    #[test]
    fn not_sizes() {
        assert_eq!(parse(""), Err("'' is not a number".into()));
        assert_eq!(parse("K"), Err("'K' is not a number".into()));
        assert_eq!(parse("-1"), Err("'-1' is not a number".into()));
        assert_eq!(parse(" 1"), Err("' 1' is not a number".into()));
        assert_eq!(parse("1 K"), Err("'1 K' has an unknown suffix".into()));
        assert_eq!(parse("1X"), Err("'1X' has an unknown suffix".into()));
        assert_eq!(parse("1KiBx"), Err("'1KiBx' has an unknown suffix".into()));
        assert_eq!(parse("1Mi"), Err("'1Mi' has an unknown suffix".into()));
        assert_eq!(parse("0x10"), Err("'0x10' has an unknown suffix".into()));
        assert_eq!(parse("16E"), Err("'16E' is too large".into()));
        assert_eq!(
            parse("18446744073709551616"),
            Err("'18446744073709551616' is too large".into())
        );
    }
}
