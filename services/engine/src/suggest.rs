//! "Did you mean ...?" hints for misspelt ids.

/// The closest known id to `wrong`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    wrong: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wrong, k), k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `unknown fact 'pregnent' (did you mean 'pregnant'?)`
pub(crate) fn unknown(
    kind: &str,
    wrong: &str,
    known: impl IntoIterator<Item = impl AsRef<str>>,
) -> String {
    let known: Vec<String> = known.into_iter().map(|k| k.as_ref().to_owned()).collect();
    match closest(wrong, known.iter().map(String::as_str)) {
        Some(hint) => format!("unknown {kind} '{wrong}' (did you mean '{hint}'?)"),
        None => format!("unknown {kind} '{wrong}'"),
    }
}
