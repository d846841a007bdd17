//! The traceability matrix (`docs/evidence/traceability.yaml`): every clinical statement of the sources
//! the rule set was built from (the evidence digest `docs/evidence/clinical-evidence.md` and the
//! seed article `docs/evidence/source-article.txt`) has a row saying which rules, facts, policies
//! or treatment data encode it, or who decided not to encode it and why.
//!
//! The test fails when
//! 1. a row has neither a non-empty `encoded_by` nor a `not_encoded` with a `reason` and a
//!    `decided_by` (or has both), or lacks its id, source, quote or statement;
//! 2. an `encoded_by` reference names something the base rule set does not have;
//! 3. a `quote` is not found verbatim (whitespace normalised) in its source or section;
//! 4. a table data row of the digest's §1–§7 has no row quoting its first cell, or a sentence of the
//!    seed has no row and is not named in the matrix's `not_clinical` list;
//! 5. two rows share an id.
//!
//! All failures are collected and reported together, each naming the row and what is wrong.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use protocol_engine::*;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Collapses every run of whitespace to one space and trims the ends.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// The sources
// ---------------------------------------------------------------------------------------------

/// The digest cut into its sections: `§N` (a `## N.` heading, with its subsections) and `§N.M`
/// (a `### N.M` heading), each with its text.
struct Digest {
    sections: BTreeMap<String, String>,
    /// (section, first cell) of every markdown table data row, in order.
    table_rows: Vec<(String, String)>,
}

fn heading(line: &str) -> Option<(usize, String)> {
    let (level, rest) = if let Some(r) = line.strip_prefix("### ") {
        (3, r)
    } else if let Some(r) = line.strip_prefix("## ") {
        (2, r)
    } else {
        return None;
    };
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let num = num.trim_end_matches('.');
    (!num.is_empty()).then(|| (level, format!("§{num}")))
}

/// The cells of a markdown table line (`| a | b |`), trimmed; `None` for any other line.
fn cells(line: &str) -> Option<Vec<String>> {
    let t = line.trim();
    let inner = t.strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

fn is_separator(cells: &[String]) -> bool {
    cells
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

fn parse_digest(text: &str) -> Digest {
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut table_rows = Vec::new();
    // The open level-2 and level-3 sections.
    let mut open2: Option<String> = None;
    let mut open3: Option<String> = None;
    // Whether the previous line was a table line (so this one is not a header).
    let mut in_table = false;
    for line in text.lines() {
        if let Some((level, id)) = heading(line) {
            if level == 2 {
                open2 = Some(id.clone());
                open3 = None;
            } else {
                open3 = Some(id.clone());
            }
            sections.entry(id).or_default();
            in_table = false;
            continue;
        }
        if line.starts_with("## ") || line.starts_with("# ") {
            // An unnumbered heading closes the numbered sections.
            open2 = None;
            open3 = None;
        }
        for id in [&open2, &open3].into_iter().flatten() {
            let s = sections.entry(id.clone()).or_default();
            s.push_str(line);
            s.push('\n');
        }
        match cells(line) {
            Some(c) => {
                let header = !in_table;
                in_table = true;
                if header || is_separator(&c) {
                    continue;
                }
                if let Some(section) = open3.as_ref().or(open2.as_ref()) {
                    table_rows.push((section.clone(), c[0].clone()));
                }
            }
            None => in_table = false,
        }
    }
    Digest {
        sections,
        table_rows,
    }
}

/// The top-level section number of `§N` or `§N.M`.
fn top(section: &str) -> Option<u32> {
    section.strip_prefix('§')?.split('.').next()?.parse().ok()
}

/// The seed cut mechanically into sentences: each line splits after `.`, `!` or `?` followed by
/// whitespace or the end of the line; bullet markers (`- `, `– `) are dropped; pieces without a
/// letter or digit are skipped; repeats are kept once.
fn seed_sentences(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for line in text.lines() {
        let mut cur = String::new();
        let mut it = line.chars().peekable();
        while let Some(c) = it.next() {
            cur.push(c);
            if matches!(c, '.' | '!' | '?') && it.peek().is_none_or(|n| n.is_whitespace()) {
                pieces.push(std::mem::take(&mut cur));
            }
        }
        pieces.push(cur);
    }
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        let mut s = normalise(&p);
        while let Some(r) = s.strip_prefix("- ").or_else(|| s.strip_prefix("– ")) {
            s = r.trim().to_string();
        }
        if !s.chars().any(char::is_alphanumeric) || out.contains(&s) {
            continue;
        }
        out.push(s);
    }
    out
}

struct Sources {
    digest: Digest,
    seed: String,
    seed_sentences: Vec<String>,
}

impl Sources {
    fn new(digest: &str, seed: &str) -> Self {
        Sources {
            digest: parse_digest(digest),
            seed: normalise(seed),
            seed_sentences: seed_sentences(seed),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the base rule set has
// ---------------------------------------------------------------------------------------------

/// Reference kind -> the ids the base rule set has for it.
type Known = BTreeMap<&'static str, BTreeSet<String>>;

const KINDS: &[&str] = &[
    "rule",
    "fact",
    "policy",
    "treatment",
    "course",
    "cap",
    "indication_cap",
    "device",
    "role",
    "procedure",
    "zone",
    "indication",
    "setting",
    "precare",
    "aftercare",
    "results",
    "source",
];

fn ids(doc: &Value, list: &str, key: &str) -> Vec<String> {
    doc.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.get(key).and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// The ids of a rule-set document in its JSON form.
fn known_ids(doc: &Value) -> Known {
    let mut k: Known = KINDS.iter().map(|k| (*k, BTreeSet::new())).collect();
    let mut add = |kind: &'static str, items: Vec<String>| {
        k.get_mut(kind).expect("a kind").extend(items);
    };
    add("rule", ids(doc, "contraindications", "id"));
    add("rule", ids(doc, "interactions", "id"));
    add("fact", ids(doc, "facts", "id"));
    add("policy", ids(doc, "policies", "id"));
    add("device", ids(doc, "devices", "id"));
    add("role", ids(doc, "roles", "id"));
    add("procedure", ids(doc, "procedures", "id"));
    add("zone", ids(doc, "zones", "id"));
    add("indication", ids(doc, "indications", "id"));
    add("setting", ids(doc, "settings", "id"));
    add("source", ids(doc, "sources", "id"));
    add("indication_cap", ids(doc, "indication_caps", "indication"));
    for t in doc
        .get("treatments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = t.get("id").and_then(Value::as_str) else {
            continue;
        };
        add("treatment", vec![id.to_string()]);
        add("course", vec![id.to_string()]);
        add("rule", vec![format!("{id}.min_interval")]);
        add(
            "cap",
            ids(t, "zones", "zone")
                .into_iter()
                .map(|z| format!("{id}.{z}"))
                .collect(),
        );
        add(
            "indication_cap",
            ids(t, "indication_caps", "indication")
                .into_iter()
                .map(|i| format!("{id}.{i}"))
                .collect(),
        );
        for part in ["precare", "aftercare", "results"] {
            if non_empty(t.get(part)) {
                add(
                    match part {
                        "precare" => "precare",
                        "aftercare" => "aftercare",
                        _ => "results",
                    },
                    vec![id.to_string()],
                );
            }
        }
    }
    k
}

// ---------------------------------------------------------------------------------------------
// The checks (each returns every failure it finds)
// ---------------------------------------------------------------------------------------------

const ROW_KEYS: &[&str] = &[
    "id",
    "source",
    "quote",
    "statement",
    "encoded_by",
    "not_encoded",
    "note",
];

fn row_id(row: &Value, i: usize) -> String {
    row.get("id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("rows[{i}]"), str::to_string)
}

fn text_field<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
    row.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Checks 1 and 5: the row's shape (encoded or deliberately not), and unique ids.
fn check_rows(rows: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let id = row_id(row, i);
        let Some(map) = row.as_object() else {
            out.push(format!("{id}: a row must be a mapping"));
            continue;
        };
        for k in map.keys() {
            if !ROW_KEYS.contains(&k.as_str()) {
                out.push(format!("{id}: unknown key `{k}`"));
            }
        }
        match text_field(row, "id") {
            Some(x) => {
                if let Some(first) = seen.insert(x.to_string(), i) {
                    out.push(format!("{id}: duplicate id (rows[{first}] and rows[{i}])"));
                }
            }
            None => out.push(format!("{id}: no `id`")),
        }
        for key in ["source", "quote", "statement"] {
            if text_field(row, key).is_none() {
                out.push(format!("{id}: no `{key}`"));
            }
        }
        if let Some(n) = row.get("note")
            && n.as_str().is_none_or(|s| s.trim().is_empty())
        {
            out.push(format!("{id}: `note` must be non-empty text"));
        }
        let encoded = match row.get("encoded_by") {
            None => false,
            Some(Value::Array(a)) if !a.is_empty() => {
                if a.iter().any(|x| !x.is_string()) {
                    out.push(format!("{id}: `encoded_by` items must be text references"));
                }
                true
            }
            Some(_) => {
                out.push(format!("{id}: `encoded_by` must be a non-empty list"));
                false
            }
        };
        let not_encoded = match row.get("not_encoded") {
            None => false,
            Some(ne) => {
                for key in ["reason", "decided_by"] {
                    if text_field(ne, key).is_none() {
                        out.push(format!("{id}: `not_encoded` needs a non-empty `{key}`"));
                    }
                }
                true
            }
        };
        match (encoded, not_encoded) {
            (true, true) => out.push(format!(
                "{id}: has both `encoded_by` and `not_encoded`; choose one"
            )),
            (false, false) if !map.contains_key("encoded_by") => out.push(format!(
                "{id}: neither `encoded_by` nor `not_encoded`: say what encodes it, or who decided not to and why"
            )),
            _ => {}
        }
    }
    out
}

/// Check 2: every `encoded_by` reference names something the base rule set has.
fn check_refs(rows: &[Value], known: &Known) -> Vec<String> {
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let id = row_id(row, i);
        for r in row
            .get("encoded_by")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let Some((kind, name)) = r.split_once(':') else {
                out.push(format!(
                    "{id}: reference `{r}` has no kind (write `rule:{r}`, `fact:{r}`, ...)"
                ));
                continue;
            };
            match known.get(kind) {
                None => out.push(format!(
                    "{id}: reference `{r}`: unknown kind `{kind}` (kinds: {})",
                    KINDS.join(", ")
                )),
                Some(set) if !set.contains(name) => out.push(format!(
                    "{id}: reference `{r}`: the base rule set has no {kind} `{name}`"
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// Check 3: every quote is in its source (the seed, or the named section of the digest).
fn check_quotes(rows: &[Value], src: &Sources) -> Vec<String> {
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let id = row_id(row, i);
        let (Some(source), Some(quote)) = (text_field(row, "source"), text_field(row, "quote"))
        else {
            continue;
        };
        let q = normalise(quote);
        if source == "seed" {
            if !src.seed.contains(&q) {
                out.push(format!("{id}: quote not found in the seed: \"{q}\""));
            } else if q.chars().count() < 20 && !src.seed_sentences.contains(&q) {
                out.push(format!(
                    "{id}: seed quote \"{q}\" is shorter than 20 characters and not a whole sentence"
                ));
            }
        } else {
            match src.digest.sections.get(source) {
                None => out.push(format!(
                    "{id}: source `{source}` is neither `seed` nor a digest section (§N or §N.M)"
                )),
                Some(text) if !normalise(text).contains(&q) => out.push(format!(
                    "{id}: quote not found in the digest's {source}: \"{q}\""
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// Check 4: coverage of the digest's §1–§7 table rows and of the seed's sentences.
fn check_coverage(rows: &[Value], not_clinical: &[String], src: &Sources) -> Vec<String> {
    let mut out = Vec::new();
    let quoted = |want: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| text_field(r, "source") == Some(want))
            .filter_map(|r| text_field(r, "quote"))
            .map(normalise)
            .collect()
    };
    // Digest tables.
    let mut by_section: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (section, first) in &src.digest.table_rows {
        if !top(section).is_some_and(|n| (1..=7).contains(&n)) {
            continue;
        }
        let qs = by_section
            .entry(section.as_str())
            .or_insert_with(|| quoted(section));
        let cell = normalise(first);
        if !qs.contains(&cell) {
            out.push(format!(
                "uncovered: digest {section} table row \"{cell}\" has no row quoting its first cell"
            ));
        }
    }
    // Seed sentences.
    let seed_quotes = quoted("seed");
    let excluded: BTreeSet<String> = not_clinical.iter().map(|s| normalise(s)).collect();
    for s in &excluded {
        if !src.seed_sentences.contains(s) {
            out.push(format!(
                "not_clinical: \"{s}\" is not a sentence of the seed (exact sentence, as split by this test)"
            ));
        }
    }
    for s in &src.seed_sentences {
        let covered = seed_quotes
            .iter()
            .any(|q| s.contains(q.as_str()) || q.contains(s.as_str()));
        match (covered, excluded.contains(s)) {
            (false, false) => out.push(format!(
                "uncovered: seed sentence \"{s}\" has no row (add one, or name it in `not_clinical` if it states nothing clinical)"
            )),
            (true, true) => out.push(format!(
                "not_clinical: \"{s}\" is quoted by a row; it cannot also be excluded"
            )),
            _ => {}
        }
    }
    out
}

/// Every check over a matrix (`{not_clinical: [...], rows: [...]}`).
fn check_matrix(matrix: &Value, known: &Known, src: &Sources) -> Vec<String> {
    let Some(rows) = matrix.get("rows").and_then(Value::as_array) else {
        return vec!["the matrix has no `rows` list".to_string()];
    };
    let not_clinical: Vec<String> = matrix
        .get("not_clinical")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let mut out = check_rows(rows);
    out.extend(check_refs(rows, known));
    out.extend(check_quotes(rows, src));
    out.extend(check_coverage(rows, &not_clinical, src));
    out
}

// ---------------------------------------------------------------------------------------------
// The matrix against the bundled base rule set
// ---------------------------------------------------------------------------------------------

#[test]
fn every_source_statement_is_traced_to_the_rule_set() {
    let mut failures = Vec::new();
    let base_text = read("rulesets/base.yaml");
    let doc = parse_document(&base_text, Format::Yaml).expect("rulesets/base.yaml parses");
    if let Err(e) = compile(&doc, None) {
        failures.push(format!("rulesets/base.yaml does not compile: {e}"));
    }
    let known = known_ids(&serde_json::to_value(&doc).expect("a document serialises"));
    let matrix: Value = serde_saphyr::from_str(&read("docs/evidence/traceability.yaml"))
        .unwrap_or_else(|e| panic!("docs/evidence/traceability.yaml does not parse: {e}"));
    let src = Sources::new(
        &read("docs/evidence/clinical-evidence.md"),
        &read("docs/evidence/source-article.txt"),
    );
    failures.extend(check_matrix(&matrix, &known, &src));
    assert!(
        failures.is_empty(),
        "traceability matrix: {} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_evidence_copies_parse_into_sections_tables_and_sentences() {
    let src = Sources::new(
        &read("docs/evidence/clinical-evidence.md"),
        &read("docs/evidence/source-article.txt"),
    );
    for s in ["§1", "§1.3", "§3.1", "§3.2", "§4.1", "§4.3", "§7"] {
        assert!(src.digest.sections.contains_key(s), "{s}");
    }
    let counted = src
        .digest
        .table_rows
        .iter()
        .filter(|(s, _)| top(s).is_some_and(|n| (1..=7).contains(&n)))
        .count();
    assert!(counted > 80, "digest table rows in §1-§7: {counted}");
    assert!(
        src.digest
            .table_rows
            .iter()
            .any(|(s, c)| s == "§3.2" && c == "**Isotretinoin**")
    );
    assert!(src.seed_sentences.len() > 100);
}

// ---------------------------------------------------------------------------------------------
// Each check can fail: small bad matrices
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod checks_fail {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "# T\n\n## 3. Contra\n\n### 3.2 Table\n| Condition | Rule |\n|---|---|\n| **Isotretinoin** | wait 6   months |\n| Pregnancy | no |\n\n## 8. Ideas\n| A | B |\n|---|---|\n| skip me | x |\n";
    const SEED: &str = "Heading Here\nNeedles make tiny injuries in the skin. Yikes!\n- Avoid microneedling when pregnant\n";

    fn src() -> Sources {
        Sources::new(DIGEST, SEED)
    }

    fn known() -> Known {
        known_ids(&json!({
            "facts": [{"id": "pregnant"}],
            "contraindications": [{"id": "pregnancy"}],
            "interactions": [{"id": "ha_filler_gap"}],
            "policies": [{"id": "isotretinoin_washout"}],
            "treatments": [{"id": "microneedling", "zones": [{"zone": "cheeks"}], "precare": [{"text": "x"}]}],
        }))
    }

    fn good_rows() -> Vec<Value> {
        vec![
            json!({"id": "d3.2.iso", "source": "§3.2", "quote": "**Isotretinoin**", "statement": "s",
                   "encoded_by": ["policy:isotretinoin_washout"]}),
            json!({"id": "d3.2.preg", "source": "§3.2", "quote": "Pregnancy", "statement": "s",
                   "encoded_by": ["rule:pregnancy", "fact:pregnant"]}),
            json!({"id": "seed.injuries", "source": "seed", "quote": "Needles make tiny injuries in the skin.",
                   "statement": "s", "not_encoded": {"reason": "mechanism", "decided_by": "author"}}),
            json!({"id": "seed.preg", "source": "seed", "quote": "Avoid microneedling when pregnant",
                   "statement": "s", "encoded_by": ["rule:pregnancy", "rule:microneedling.min_interval", "cap:microneedling.cheeks", "precare:microneedling"]}),
        ]
    }

    fn matrix(rows: Vec<Value>) -> Value {
        json!({"not_clinical": ["Heading Here", "Yikes!"], "rows": rows})
    }

    fn run(rows: Vec<Value>) -> Vec<String> {
        check_matrix(&matrix(rows), &known(), &src())
    }

    #[test]
    fn a_good_matrix_passes() {
        assert_eq!(run(good_rows()), Vec::<String>::new());
    }

    #[test]
    fn the_digest_parser_skips_headers_separators_and_sections_beyond_7() {
        let d = parse_digest(DIGEST);
        assert_eq!(
            d.table_rows,
            vec![
                ("§3.2".to_string(), "**Isotretinoin**".to_string()),
                ("§3.2".to_string(), "Pregnancy".to_string()),
                ("§8".to_string(), "skip me".to_string()),
            ]
        );
    }

    #[test]
    fn a_row_with_neither_encoding_nor_decision_fails() {
        let mut rows = good_rows();
        rows[0] = json!({"id": "d3.2.iso", "source": "§3.2", "quote": "**Isotretinoin**", "statement": "s"});
        let f = run(rows);
        assert!(
            f.iter()
                .any(|m| m.starts_with("d3.2.iso:") && m.contains("neither")),
            "{f:?}"
        );
    }

    #[test]
    fn a_row_with_both_or_an_empty_list_or_a_half_decision_fails() {
        let mut rows = good_rows();
        rows[0]["not_encoded"] = json!({"reason": "r", "decided_by": "d"});
        rows[1]["encoded_by"] = json!([]);
        rows[2]["not_encoded"] = json!({"reason": "mechanism", "decided_by": " "});
        let f = run(rows);
        assert!(
            f.iter()
                .any(|m| m.starts_with("d3.2.iso:") && m.contains("both")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("d3.2.preg:") && m.contains("non-empty list")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("seed.injuries:") && m.contains("decided_by")),
            "{f:?}"
        );
    }

    #[test]
    fn an_unknown_reference_fails_and_all_are_reported() {
        let mut rows = good_rows();
        rows[0]["encoded_by"] = json!([
            "rule:nope",
            "fact:pregnant",
            "policy:nope",
            "wish:x",
            "pregnancy",
            "rule:ha_filler_gap"
        ]);
        rows[3]["encoded_by"] = json!(["cap:microneedling.neck", "aftercare:microneedling"]);
        let f = run(rows);
        for want in [
            "d3.2.iso: reference `rule:nope`",
            "d3.2.iso: reference `policy:nope`",
            "d3.2.iso: reference `wish:x`: unknown kind",
            "d3.2.iso: reference `pregnancy` has no kind",
            "seed.preg: reference `cap:microneedling.neck`",
            "seed.preg: reference `aftercare:microneedling`",
        ] {
            assert!(f.iter().any(|m| m.starts_with(want)), "{want} in {f:?}");
        }
        assert_eq!(f.len(), 6, "{f:?}");
    }

    #[test]
    fn a_quote_not_in_its_source_fails_but_whitespace_is_normalised() {
        let mut rows = good_rows();
        rows.push(json!({"id": "d3.2.ws", "source": "§3.2", "quote": "wait 6 months", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        assert_eq!(run(rows.clone()), Vec::<String>::new());
        rows.push(json!({"id": "d3.2.bad", "source": "§3.2", "quote": "wait 9 months", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        rows.push(json!({"id": "d3.1.wrong_section", "source": "§8", "quote": "wait 6 months", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        rows.push(json!({"id": "seed.bad", "source": "seed", "quote": "Needles make huge injuries", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        rows.push(json!({"id": "seed.short", "source": "seed", "quote": "tiny injuries", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        rows.push(json!({"id": "x.nosection", "source": "§9.9", "quote": "x", "statement": "s", "encoded_by": ["rule:pregnancy"]}));
        let f = run(rows);
        for want in [
            "d3.2.bad: quote not found in the digest's §3.2",
            "d3.1.wrong_section: quote not found in the digest's §8",
            "seed.bad: quote not found in the seed",
            "seed.short: seed quote",
            "x.nosection: source `§9.9`",
        ] {
            assert!(f.iter().any(|m| m.starts_with(want)), "{want} in {f:?}");
        }
    }

    #[test]
    fn an_uncovered_table_row_or_seed_sentence_fails() {
        let mut rows = good_rows();
        rows.remove(3); // the seed's pregnancy bullet
        rows.remove(1); // the digest's pregnancy row
        let f = run(rows);
        assert!(
            f.iter().any(|m| m.contains("§3.2 table row \"Pregnancy\"")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.contains("seed sentence \"Avoid microneedling when pregnant\"")),
            "{f:?}"
        );
        // §8 is not a clinical section: its table is not required.
        assert!(!f.iter().any(|m| m.contains("skip me")), "{f:?}");
        assert_eq!(f.len(), 2, "{f:?}");
    }

    #[test]
    fn a_quote_of_the_wrong_section_does_not_cover_a_table_row() {
        let mut rows = good_rows();
        rows[1]["source"] = json!("§3");
        let f = run(rows);
        assert!(
            f.iter().any(|m| m.contains("§3.2 table row \"Pregnancy\"")),
            "{f:?}"
        );
    }

    #[test]
    fn not_clinical_must_name_real_sentences_and_not_hide_quoted_ones() {
        let m = json!({"not_clinical": ["Heading Here", "Yikes!", "Not in the seed", "Avoid microneedling when pregnant"], "rows": good_rows()});
        let f = check_matrix(&m, &known(), &src());
        assert!(
            f.iter()
                .any(|m| m.contains("\"Not in the seed\" is not a sentence")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.contains("\"Avoid microneedling when pregnant\" is quoted by a row")),
            "{f:?}"
        );
        let m = json!({"not_clinical": ["Heading Here"], "rows": good_rows()});
        let f = check_matrix(&m, &known(), &src());
        assert!(
            f.iter().any(|m| m.contains("seed sentence \"Yikes!\"")),
            "{f:?}"
        );
    }

    #[test]
    fn duplicate_ids_and_missing_fields_fail() {
        let mut rows = good_rows();
        rows[1]["id"] = json!("d3.2.iso");
        rows[2].as_object_mut().expect("map").remove("statement");
        rows[3]["encoded-by"] = json!(["rule:pregnancy"]);
        let f = run(rows);
        assert!(
            f.iter().any(|m| m.starts_with("d3.2.iso: duplicate id")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("seed.injuries: no `statement`")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("seed.preg: unknown key `encoded-by`")),
            "{f:?}"
        );
    }
}
