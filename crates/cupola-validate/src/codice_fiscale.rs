//! Italian codice fiscale (tax code of a person): shape, omocodia and check
//! character, as published by the Agenzia delle Entrate (DM 23/12/1976).

/// Letters that replace the digits 0–9 in omocodia variants.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";

/// 1-based positions whose digits may be replaced by [`OMOCODIA`] letters.
const DIGIT_POSITIONS: [usize; 7] = [7, 8, 10, 11, 13, 14, 15];

/// Values of A..Z (and of 0..9, which count like A..J) at odd positions.
const ODD: [u32; 26] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

/// Month letters, January to December.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

/// Checks one code; `Err` says what is wrong in a sentence.
pub(crate) fn check(code: &str) -> Result<(), String> {
    let bytes = code.as_bytes();
    if bytes.len() != 16 || !code.is_ascii() {
        return Err(format!("a codice fiscale has 16 characters, '{code}' has {}", code.chars().count()));
    }
    for (i, &b) in bytes.iter().enumerate() {
        let position = i + 1;
        let ok = if DIGIT_POSITIONS.contains(&position) {
            b.is_ascii_digit() || OMOCODIA.contains(&b)
        } else {
            b.is_ascii_uppercase()
        };
        if !ok {
            let expected = if DIGIT_POSITIONS.contains(&position) {
                "a digit (or an omocodia letter L M N P Q R S T U V)"
            } else {
                "an uppercase letter"
            };
            return Err(format!("character {position} of '{code}' is '{}', expected {expected}", b as char));
        }
    }
    if !MONTHS.contains(&bytes[8]) {
        return Err(format!(
            "character 9 of '{code}' is '{}', not a month letter (A B C D E H L M P R S T)",
            bytes[8] as char
        ));
    }
    let day = digit(bytes[9]) * 10 + digit(bytes[10]);
    if !(1..=31).contains(&day) && !(41..=71).contains(&day) {
        return Err(format!("characters 10-11 of '{code}' give day {day:02}, expected 01-31 (men) or 41-71 (women)"));
    }
    let expected = check_char(&bytes[..15]);
    if bytes[15] != expected {
        return Err(format!(
            "the check character of '{code}' is '{}', but the first 15 characters give '{}'",
            bytes[15] as char, expected as char
        ));
    }
    Ok(())
}

/// The value of a digit position, omocodia letters decoded.
fn digit(b: u8) -> u32 {
    if b.is_ascii_digit() {
        u32::from(b - b'0')
    } else {
        OMOCODIA.iter().position(|&l| l == b).map_or(0, |p| p as u32)
    }
}

/// The check character for the first 15 characters (uppercase letters/digits).
pub(crate) fn check_char(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            // Digits count like the letters A..J at the same position.
            let index = if b.is_ascii_digit() { b - b'0' } else { b.wrapping_sub(b'A') } as usize;
            let index = index.min(25);
            if i % 2 == 0 {
                ODD[index] // 1st, 3rd, … (odd 1-based positions)
            } else {
                index as u32
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_examples() {
        // Examples published with the algorithm (Mario Rossi, Rome).
        assert_eq!(check("RSSMRA85T10A562S"), Ok(()));
        assert_eq!(check("RSSMRA80A01H501U"), Ok(()));
    }

    #[test]
    fn omocodia_variant_keeps_its_own_check_char() {
        // RSSMRA85T10A562S with the last digit 2 → N: check char recomputed
        // on the string as written.
        assert_eq!(check_char(b"RSSMRA85T10A56N"), b'H');
        assert_eq!(check("RSSMRA85T10A56NH"), Ok(()));
        assert!(check("RSSMRA85T10A56NS").is_err());
    }

    #[test]
    fn wrong_codes() {
        assert!(check("RSSMRA85T10A562T").is_err());
        assert!(check("RSSMRA85T10A562").is_err());
        assert!(check("rssmra85t10a562s").is_err());
        assert!(check("RSSMRA85Z10A562S").is_err());
        assert!(check("RSSMRA85T99A562S").is_err());
    }
}
