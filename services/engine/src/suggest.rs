//! "Did you mean ...?" hints for misspelt ids, and the allowed values when nothing is close: a
//! caller told `unknown role 'doctor'` alone cannot fix the request.

/// Most allowed values listed in a message; past it the message says how many there are.
const MAX_LISTED: usize = 40;

/// The longest input a hint is looked for: no id is longer (ids are at most 128 characters),
/// and the comparison costs the product of the lengths, so longer input gets no hint at once.
const MAX_HINTED: usize = 128;

/// The closest known id to `wrong`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    wrong: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if wrong.len() > MAX_HINTED {
        return None;
    }
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wrong, k), k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `unknown fact 'pregnent' (did you mean 'pregnant'?)`, or with nothing close
/// `unknown role 'doctor' (expected one of: physician, nurse, aesthetician, self)`.
pub(crate) fn unknown(
    kind: &str,
    wrong: &str,
    known: impl IntoIterator<Item = impl AsRef<str>>,
) -> String {
    let known: Vec<String> = known.into_iter().map(|k| k.as_ref().to_owned()).collect();
    let wrong_shown = clip(wrong);
    match closest(wrong, known.iter().map(String::as_str)) {
        Some(hint) => format!("unknown {kind} '{wrong_shown}' (did you mean '{hint}'?)"),
        None => format!("unknown {kind} '{wrong_shown}' ({})", allowed(&known)),
    }
}

/// `expected one of: a, b, c`, or how many there are when the list is too long to repeat.
pub(crate) fn allowed(known: &[impl AsRef<str>]) -> String {
    match known.len() {
        0 => "none is declared".to_owned(),
        n if n > MAX_LISTED => format!("none of the {n} declared is close"),
        _ => format!(
            "expected one of: {}",
            known
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// User input clipped for a message: a message echoes what was sent, not a whole body.
fn clip(text: &str) -> &str {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_nearest_or_every_allowed_value() {
        let roles = ["physician", "nurse", "aesthetician", "self"];
        assert_eq!(
            unknown("role", "nurse_", roles),
            "unknown role 'nurse_' (did you mean 'nurse'?)"
        );
        assert_eq!(
            unknown("role", "doctor", roles),
            "unknown role 'doctor' (expected one of: physician, nurse, aesthetician, self)"
        );
        let many: Vec<String> = (0..50).map(|i| format!("fact_{i}")).collect();
        assert_eq!(
            unknown("fact", "zzz", &many),
            "unknown fact 'zzz' (none of the 50 declared is close)"
        );
        assert!(unknown("zone", &"x".repeat(1000), ["a"]).len() < 120);
        // A name longer than any id is not compared at all: no hint.
        let long = format!("pregnant{}", "x".repeat(250_000));
        assert_eq!(closest(&long, ["pregnant"]), None);
    }
}
