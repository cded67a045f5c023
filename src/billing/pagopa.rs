//! pagoPA payment notice numbers ("Avviso di pagamento", specifications 2.5.1):
//! 18 digits, `<aux digit><segregation code(2)><IUV base(13)><check(2)>` for aux
//! digit 3, the check being the remainder of dividing by 93 the number made of all
//! the digits before it. The IUV (segregation code, base, check) names the debt;
//! payments are reconciled by it.

use crate::mappings::billing::PagoPa;

/// A notice number and its IUV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub number: String,
    pub iuv: String,
}

/// The notice of the `sequence`-th debt of the creditor station `p`.
pub fn notice(p: &PagoPa, sequence: u64) -> Notice {
    let head = format!("{}{}{:013}", p.aux_digit, p.segregation_code, sequence % 10_000_000_000_000);
    let number = format!("{head}{:02}", check(&head));
    Notice { iuv: number[1..].to_string(), number }
}

/// The remainder by 93 of the number written by `digits`.
fn check(digits: &str) -> u64 {
    digits.bytes().fold(0, |r, b| (r * 10 + u64::from(b - b'0')) % 93)
}

/// Whether `number` is an 18-digit notice number whose check digits are right.
pub fn is_valid(number: &str) -> bool {
    number.len() == 18
        && number.bytes().all(|b| b.is_ascii_digit())
        && number[16..].parse::<u64>().ok() == Some(check(&number[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_is_the_remainder_by_93() {
        let p = PagoPa { aux_digit: "3".into(), segregation_code: "01".into() };
        let n = notice(&p, 42);
        assert_eq!(&n.number[..16], "3010000000000042");
        // 3010000000000042 mod 93 = 3010000000000042 - 93 × 32365591397849 = 85
        assert_eq!(&n.number[16..], "85");
        assert_eq!(n.iuv, "01000000000004285");
        assert!(is_valid(&n.number));
        assert!(!is_valid("301000000000004286"));
        assert!(!is_valid("30100000000000428"));
    }
}
