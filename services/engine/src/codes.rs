//! Standard codes on facts, procedures, zones and indications: which terminologies are accepted,
//! and the shape of a code in each.
//!
//! A code is how an EHR's data (a FHIR Condition, a MedicationStatement, an Observation) is
//! matched to a fact, so a wrong one silently misreads a client. The engine cannot look codes up
//! (it has no terminology server and no I/O), but it can refuse what is certainly wrong: a system
//! it does not know, an empty code or display, the same code twice, and a code that does not have
//! its system's shape. SNOMED CT identifiers and LOINC codes carry a check digit (Verhoeff and
//! mod 10), which catches a mistyped or made-up number in nine cases out of ten.

use crate::api::Coding;

/// SNOMED CT: conditions, findings, procedures, body structures.
pub const SNOMED_CT: &str = "http://snomed.info/sct";
/// LOINC: questions and observations (pregnancy status, ...).
pub const LOINC: &str = "http://loinc.org";
/// RxNorm: medicines by ingredient (US).
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
/// WHO ATC: medicine classes (antithrombotic agents, ...), used across Europe.
pub const ATC: &str = "http://www.whocc.no/atc";
/// WHO ICD-10: many EHRs outside the US code a Condition in ICD-10 only.
pub const ICD_10: &str = "http://hl7.org/fhir/sid/icd-10";
/// ICD-10-CM: US EHRs code a Condition's diagnosis in ICD-10-CM (billing) beside or instead of
/// SNOMED CT.
pub const ICD_10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// A check of a code's shape in one system: why it is not a code of that system.
type Shape = fn(&str) -> Result<(), &'static str>;

/// The terminologies a rule set may code with, each with the check of its codes' shape.
const SYSTEMS: [(&str, Shape); 6] = [
    (SNOMED_CT, snomed_id),
    (LOINC, loinc_code),
    (RXNORM, rxcui),
    (ATC, atc_code),
    (ICD_10, icd10_code),
    (ICD_10_CM, icd10_code),
];

/// The URIs of every known terminology, for messages and documentation.
pub fn known_systems() -> impl Iterator<Item = &'static str> {
    SYSTEMS.iter().map(|(uri, _)| *uri)
}

/// Checks a list of codes: every fault as `(path below the list, message)`. `None` (no `codes`)
/// is fine; an empty list is not (leave the key out when no standard code exists, so a reader
/// never mistakes "looked and found none" for "coded").
pub(crate) fn check(codes: Option<&[Coding]>) -> Vec<(String, String)> {
    let Some(codes) = codes else {
        return Vec::new();
    };
    let mut faults = Vec::new();
    if codes.is_empty() {
        faults.push((
            String::new(),
            "must not be empty: leave `codes` out when no standard code exists".to_owned(),
        ));
    }
    for (i, c) in codes.iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        match SYSTEMS.iter().find(|(uri, _)| *uri == c.system) {
            None => faults.push((
                at("system"),
                format!(
                    "unknown code system '{}' (known: {})",
                    c.system.chars().take(100).collect::<String>(),
                    known_systems().collect::<Vec<_>>().join(", ")
                ),
            )),
            Some((_, shape)) => {
                if let Err(why) = shape(&c.code) {
                    faults.push((
                        at("code"),
                        format!(
                            "'{}' is not a {} code: {why}",
                            c.code.chars().take(40).collect::<String>(),
                            c.system
                        ),
                    ));
                }
            }
        }
        if c.display.trim().is_empty() {
            faults.push((
                at("display"),
                "must not be empty: give the terminology's display text".to_owned(),
            ));
        }
        if codes[..i]
            .iter()
            .any(|d| d.system == c.system && d.code == c.code)
        {
            faults.push((
                at("code"),
                format!("duplicate code '{}' of {}", c.code, c.system),
            ));
        }
    }
    faults
}

/// A SNOMED CT identifier: 6 to 18 digits, no leading zero, the last a Verhoeff check digit.
fn snomed_id(code: &str) -> Result<(), &'static str> {
    if !(6..=18).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a SNOMED CT identifier is 6 to 18 digits");
    }
    if code.starts_with('0') {
        return Err("a SNOMED CT identifier has no leading zero");
    }
    if verhoeff_valid(code) {
        Ok(())
    } else {
        Err("its check digit is wrong (Verhoeff): mistyped?")
    }
}

/// A LOINC code: up to 7 digits, a hyphen and a mod-10 check digit (`82810-3`).
fn loinc_code(code: &str) -> Result<(), &'static str> {
    let Some((number, check)) = code.split_once('-') else {
        return Err("a LOINC code is digits, a hyphen and a check digit (82810-3)");
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(number) || number.len() > 7 || check.len() != 1 || !digits_only(check) {
        return Err("a LOINC code is digits, a hyphen and a check digit (82810-3)");
    }
    if Some(mod10_check(number)) == check.bytes().next().map(|b| b - b'0') {
        Ok(())
    } else {
        Err("its check digit is wrong (mod 10): mistyped?")
    }
}

/// An RxNorm concept id (RxCUI): 1 to 9 digits.
fn rxcui(code: &str) -> Result<(), &'static str> {
    if (1..=9).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("an RxNorm concept id is 1 to 9 digits")
    }
}

/// An ATC code at any of its five levels: `B`, `B01`, `B01A`, `B01AA`, `B01AA03`.
fn atc_code(code: &str) -> Result<(), &'static str> {
    let b = code.as_bytes();
    let shape: [fn(u8) -> bool; 7] = [
        |c| c.is_ascii_uppercase(),
        |c| c.is_ascii_digit(),
        |c| c.is_ascii_digit(),
        |c| c.is_ascii_uppercase(),
        |c| c.is_ascii_uppercase(),
        |c| c.is_ascii_digit(),
        |c| c.is_ascii_digit(),
    ];
    let whole_level = matches!(b.len(), 1 | 3 | 4 | 5 | 7);
    if whole_level && b.iter().zip(shape).all(|(c, ok)| ok(*c)) {
        Ok(())
    } else {
        Err("an ATC code is a level of L99LL99 (B01, B01A, B01AA03)")
    }
}

/// An ICD-10 (or ICD-10-CM) code: a letter, two characters, then optionally a dot and up to four
/// more (`L91.0`).
fn icd10_code(code: &str) -> Result<(), &'static str> {
    let (head, tail) = code.split_once('.').unwrap_or((code, ""));
    let h = head.as_bytes();
    let head_ok = h.len() == 3
        && h[0].is_ascii_uppercase()
        && h[1].is_ascii_digit()
        && (h[2].is_ascii_digit() || h[2].is_ascii_uppercase());
    let tail_ok = tail.len() <= 4
        && tail
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && (tail.is_empty() != code.contains('.'));
    if head_ok && tail_ok {
        Ok(())
    } else {
        Err("an ICD-10 code is a letter, two characters and an optional dotted suffix (L91.0)")
    }
}

/// The Verhoeff check over a string of ASCII digits, the check digit last.
fn verhoeff_valid(digits: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, b) in digits.bytes().rev().enumerate() {
        let digit = usize::from(b.wrapping_sub(b'0'));
        let p = P[i % 8].get(digit).copied().unwrap_or(0);
        c = D[usize::from(c)][usize::from(p)];
    }
    c == 0
}

/// The mod-10 (Luhn) check digit LOINC appends to a code's number.
fn mod10_check(number: &str) -> u8 {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = d * 2;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coding(system: &str, code: &str) -> Coding {
        Coding {
            system: system.to_owned(),
            code: code.to_owned(),
            display: "x".to_owned(),
        }
    }

    #[test]
    fn check_digits_accept_published_codes_and_refuse_a_changed_digit() {
        // Published codes: SNOMED CT 77386006 |Pregnancy|, 22298006 |Myocardial infarction|,
        // 138875005 (the root concept); LOINC 82810-3 |Pregnancy status|, 8302-2 |Body height|.
        for ok in ["77386006", "22298006", "138875005"] {
            assert_eq!(snomed_id(ok), Ok(()), "{ok}");
        }
        for ok in ["82810-3", "8302-2"] {
            assert_eq!(loinc_code(ok), Ok(()), "{ok}");
        }
        for bad in ["77386007", "77386106", "012345", "12345", "7738600x"] {
            assert!(snomed_id(bad).is_err(), "{bad}");
        }
        for bad in ["82810-4", "82810", "8281a-3", "-3", "82810-33"] {
            assert!(loinc_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn atc_and_icd10_shapes() {
        for ok in ["B", "B01", "B01A", "B01AA", "B01AA03", "D10BA01"] {
            assert_eq!(atc_code(ok), Ok(()), "{ok}");
        }
        for bad in ["", "B0", "B01AA0", "b01", "B01a", "B01AA033"] {
            assert!(atc_code(bad).is_err(), "{bad}");
        }
        for ok in ["L91", "L91.0", "O09.90", "Z33.1"] {
            assert_eq!(icd10_code(ok), Ok(()), "{ok}");
        }
        for bad in ["L9", "L91.", "91.0", "L91.00000"] {
            assert!(icd10_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_refuse_empty_unknown_systems_blank_displays_and_duplicates() {
        assert!(check(None).is_empty());
        assert_eq!(check(Some(&[])).len(), 1);
        let mut blank = coding(SNOMED_CT, "77386006");
        blank.display = " ".to_owned();
        let faults = check(Some(&[
            coding("http://example.org/codes", "1"),
            blank,
            coding(SNOMED_CT, "77386006"),
        ]));
        let paths: Vec<&str> = faults.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["[0].system", "[1].display", "[2].code"]);
        assert!(faults[0].1.contains("unknown code system"));
        assert!(faults[2].1.contains("duplicate"));
    }
}
