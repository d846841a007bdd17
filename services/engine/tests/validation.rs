//! Every validation fault, each shown with a broken rule set: the error must name the place
//! (path, and line where YAML keeps it) and the fault, so an author can fix it without help.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use protocol_engine::{Format, LoadError, RuleSet, compile, parse_document};

const MINI: &str = include_str!("fixtures/mini.yaml");

fn load(text: &str) -> Result<RuleSet, LoadError> {
    let doc = parse_document(text, Format::Yaml)?;
    compile(&doc, None)
}

/// The mini rule set with one substring replaced (which must occur exactly once).
fn broken(from: &str, to: &str) -> String {
    assert_eq!(
        MINI.matches(from).count(),
        1,
        "fixture must contain `{from}` exactly once"
    );
    MINI.replacen(from, to, 1)
}

/// Asserts that loading fails with a problem at `path` whose message contains `message`.
fn assert_problem(text: &str, path: &str, message: &str) -> Option<u64> {
    let err = load(text).expect_err("the broken rule set must be refused");
    let hit = err
        .problems
        .iter()
        .find(|p| p.path == path && p.message.contains(message));
    assert!(
        hit.is_some(),
        "expected a problem at `{path}` containing `{message}`, got:\n{err}"
    );
    hit.and_then(|p| p.line)
}

fn line_of(text: &str, needle: &str) -> u64 {
    let idx = text.find(needle).expect("needle present");
    text[..idx].matches('\n').count() as u64 + 1
}

#[test]
fn the_fixture_itself_is_valid() {
    let rs = load(MINI).expect("mini.yaml is valid");
    assert_eq!(rs.meta().id, "mini");
    assert!(rs.meta().digest.starts_with("sha256:"));
}

#[test]
fn misspelt_fact_is_named_with_a_suggestion_and_the_rules_line() {
    let text = broken("{fact: pregnant, eq: true}", "{fact: pregnent, eq: true}");
    let line = assert_problem(
        &text,
        "contraindications[0].when.fact",
        "unknown fact 'pregnent' (did you mean 'pregnant'?)",
    );
    assert_eq!(
        line,
        Some(line_of(&text, "- id: pregnancy")),
        "the line of the rule"
    );
}

#[test]
fn unknown_zone_in_a_treatment() {
    let text = broken("{zone: forehead,", "{zone: fourhead,");
    assert_problem(
        &text,
        "treatments[0].zones[1].zone",
        "unknown zone 'fourhead' (did you mean 'forehead'?)",
    );
}

#[test]
fn unknown_treatment_on_a_device() {
    let text = broken(
        "treatments: [microneedling]\n    max_depth_mm",
        "treatments: [microneedlin]\n    max_depth_mm",
    );
    assert_problem(
        &text,
        "devices[0].treatments[0]",
        "unknown treatment 'microneedlin'",
    );
}

#[test]
fn unknown_procedure_in_an_interaction() {
    let text = broken("after: botulinum_toxin", "after: botox");
    assert_problem(&text, "interactions[0].after", "unknown procedure 'botox'");
}

#[test]
fn unknown_device_in_an_overlay() {
    let base = parse_document(MINI, Format::Yaml).expect("base");
    let overlay = parse_document(
        "id: clinic\nversion: '1'\nextends: mini\ntighten:\n  devices:\n    - {id: pem, max_depth_mm: 1.0}\n",
        Format::Yaml,
    )
    .expect("overlay parses");
    let err = compile(&overlay, Some(&base)).expect_err("refused");
    assert!(
        err.problems.iter().any(
            |p| p.path == "tighten.devices[0].id" && p.message.contains("unknown device 'pem'")
        ),
        "{err}"
    );
}

#[test]
fn a_date_compared_with_a_number_is_a_type_error() {
    let text = broken(
        "{fact: fitzpatrick, gte: 4}",
        "{fact: date_of_birth, gte: 4}",
    );
    assert_problem(
        &text,
        "contraindications[1].when",
        "'date_of_birth' is a date fact and cannot be compared with a value",
    );
}

#[test]
fn a_bool_compared_with_a_number_is_a_type_error() {
    let text = broken("{fact: pregnant, eq: true}", "{fact: pregnant, eq: 1}");
    assert_problem(
        &text,
        "contraindications[0].when.eq",
        "'pregnant' is a bool fact; 1 is not true or false",
    );
}

#[test]
fn an_integer_outside_its_declared_range() {
    let text = broken("{fact: fitzpatrick, gte: 4}", "{fact: fitzpatrick, gte: 9}");
    assert_problem(
        &text,
        "contraindications[1].when.gte",
        "9 is outside 'fitzpatrick' range 1..=6",
    );
}

#[test]
fn an_enum_value_that_is_not_declared() {
    let text = broken(
        "{fact: rosacea, eq: papulopustular}",
        "{fact: rosacea, eq: papulopustullar}",
    );
    assert_problem(
        &text,
        "contraindications[2].when.eq",
        "unknown value of 'rosacea' 'papulopustullar' (did you mean 'papulopustular'?)",
    );
}

#[test]
fn within_days_of_a_non_date_fact() {
    let text = broken(
        "{fact: pregnant, eq: true}",
        "{within_days: {fact: pregnant, days: {value: 3, evidence: IFU, sources: [ifu]}}}",
    );
    assert_problem(
        &text,
        "contraindications[0].when.within_days.fact",
        "'pregnant' is not a date fact",
    );
}

#[test]
fn duplicate_fact_ids() {
    let text = broken(
        "  - {id: pregnant, type: bool, question: Are you pregnant?}\n",
        "  - {id: pregnant, type: bool, question: Are you pregnant?}\n  - {id: pregnant, type: bool, question: Again?}\n",
    );
    assert_problem(&text, "facts[2].id", "duplicate fact id 'pregnant'");
}

#[test]
fn duplicate_rule_ids() {
    let text = broken("  - id: pih_risk\n", "  - id: pregnancy\n");
    assert_problem(
        &text,
        "contraindications[1].id",
        "duplicate rule id 'pregnancy'",
    );
}

#[test]
fn a_zone_without_a_depth_cap_is_refused_with_its_line() {
    let text = broken(
        "- {zone: forehead, max_depth_mm: {value: 0.75, evidence: IFU, sources: [ifu]}, start_depth_mm: 0.25}",
        "- {zone: forehead, start_depth_mm: 0.25}",
    );
    let err = load(&text).expect_err("refused");
    let p = &err.problems[0];
    assert!(p.message.contains("max_depth_mm"), "{err}");
    assert_eq!(
        p.line,
        Some(line_of(&text, "- {zone: forehead, start_depth_mm")),
        "{err}"
    );
}

#[test]
fn a_needle_treatment_with_no_zone_caps() {
    let start = MINI
        .find("    zones:\n      - {zone: cheeks")
        .expect("zones block");
    let end = MINI.find("    aftercare:").expect("aftercare");
    let text = format!("{}{}", &MINI[..start], &MINI[end..]);
    assert_problem(
        &text,
        "treatments[0].zones",
        "needs a depth cap for every zone it treats",
    );
}

#[test]
fn a_cap_above_the_devices_labelled_maximum() {
    let text = broken(
        "evaluated_max_depth_mm: {value: 1.5",
        "evaluated_max_depth_mm: {value: 3.0",
    );
    assert_problem(
        &text,
        "devices[0].evaluated_max_depth_mm",
        "cap 3 mm is above the device's labelled maximum 2.5 mm",
    );
}

#[test]
fn an_unknown_source_is_named() {
    let text = broken(
        "staff_message: Pregnancy.",
        "staff_message: Pregnancy.\n    # cites nothing real below",
    )
    .replace(
        "    sources: [ifu]\n    staff_message: Pregnancy.",
        "    sources: [ifuu]\n    staff_message: Pregnancy.",
    );
    assert_problem(
        &text,
        "contraindications[0].sources[0]",
        "unknown source 'ifuu' (did you mean 'ifu'?)",
    );
}

#[test]
fn an_unknown_policy_is_named() {
    let text = broken("days: {policy: washout}", "days: {policy: washot}");
    assert_problem(
        &text,
        "contraindications[3].defer.days",
        "unknown policy 'washot' (did you mean 'washout'?)",
    );
}

#[test]
fn a_misspelt_key_is_refused_not_ignored() {
    let text = broken(
        "    effect: contraindicate\n    severity: absolute\n    evidence: IFU\n    sources: [ifu]\n    staff_message: Pregnancy.",
        "    efect: contraindicate\n    severity: absolute\n    evidence: IFU\n    sources: [ifu]\n    staff_message: Pregnancy.",
    );
    let err = load(&text).expect_err("refused");
    assert!(err.problems[0].message.contains("efect"), "{err}");
    assert!(err.problems[0].line.is_some(), "a line number: {err}");
}

#[test]
fn yaml_syntax_errors_carry_a_line() {
    let err = load("id: x\nversion: [unclosed\n").expect_err("refused");
    assert!(err.problems[0].line.is_some(), "{err}");
}

#[test]
fn a_defer_without_its_block() {
    let text = broken("    defer: {until: resolved}\n", "");
    assert_problem(
        &text,
        "contraindications[2]",
        "`effect: defer` needs a `defer` block",
    );
}

fn overlay(body: &str) -> LoadError {
    let base = parse_document(MINI, Format::Yaml).expect("base");
    let doc = parse_document(
        &format!("id: clinic\nversion: '1'\nextends: mini\n{body}"),
        Format::Yaml,
    )
    .expect("overlay parses");
    compile(&doc, Some(&base)).expect_err("a loosening overlay is refused")
}

fn assert_overlay(body: &str, path: &str, message: &str) {
    let err = overlay(body);
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == path && p.message.contains(message)),
        "expected `{path}`: `{message}`, got:\n{err}"
    );
}

#[test]
fn overlay_deeper_zone_cap_is_refused_naming_both_values() {
    assert_overlay(
        "tighten:\n  treatments:\n    - {id: microneedling, zones: {cheeks: 2.0}}\n",
        "tighten.treatments[0].zones.cheeks",
        "overlay loosens the depth cap: base 1.5 mm, overlay 2 mm",
    );
}

#[test]
fn overlay_shorter_interval_is_refused() {
    assert_overlay(
        "tighten:\n  treatments:\n    - {id: microneedling, min_interval_days: 14}\n",
        "tighten.treatments[0].min_interval_days",
        "base 28 days, overlay 14 days",
    );
}

#[test]
fn overlay_laxer_policy_is_refused() {
    assert_overlay(
        "choose: {washout: none}\n",
        "choose.washout",
        "base option 'six_months' (180 days), overlay option 'none' (0 days)",
    );
}

#[test]
fn overlay_deeper_role_cap_is_refused() {
    assert_overlay(
        "tighten:\n  roles:\n    - {id: aesthetician, max_depth_mm: 1.0}\n",
        "tighten.roles[0].max_depth_mm",
        "base 0.5 mm, overlay 1 mm",
    );
}

#[test]
fn overlay_deeper_device_cap_is_refused() {
    assert_overlay(
        "tighten:\n  devices:\n    - {id: pen, max_depth_mm: 3.0}\n",
        "tighten.devices[0].max_depth_mm",
        "labelled maximum 2.5 mm, overlay 3 mm",
    );
}

#[test]
fn overlay_may_not_redeclare_facts() {
    assert_overlay(
        "facts:\n  - {id: x, type: bool, question: X?}\n",
        "facts",
        "an overlay may not declare facts",
    );
}

#[test]
fn a_tightening_overlay_loads_and_names_its_base() {
    let base = parse_document(MINI, Format::Yaml).expect("base");
    let doc = parse_document(
        "id: clinic\nversion: '2'\nextends: mini\nchoose: {washout: twelve_months}\ntighten:\n  treatments:\n    - {id: microneedling, min_interval_days: 42, zones: {cheeks: 1.0}}\n",
        Format::Yaml,
    )
    .expect("parses");
    let rs = compile(&doc, Some(&base)).expect("tightening is accepted");
    assert_eq!(rs.meta().id, "clinic");
    assert_eq!(rs.meta().base.as_ref().map(|b| b.id.as_str()), Some("mini"));
}

/// The mini rule set with its one treatment done at home, where a setting caps depth at 0.25 mm.
fn at_home(text: &str) -> String {
    let home = "  - {id: clinic, name: Clinic}\n  - {id: home, name: Home, max_depth_mm: {value: 0.25, evidence: INFERRED, note: home cap}}";
    assert_eq!(text.matches("  - {id: clinic, name: Clinic}").count(), 1);
    assert_eq!(text.matches("    setting: clinic\n").count(), 1);
    text.replacen("  - {id: clinic, name: Clinic}", home, 1)
        .replacen("    setting: clinic\n", "    setting: home\n", 1)
}

#[test]
fn a_fixed_length_device_longer_than_the_settings_cap_is_refused_with_its_line() {
    // A 2.5 mm roller offered for home use, where the setting caps depth at 0.25 mm: no dial can
    // make it shallower, so "max 0.25 mm, bound by setting" would be a depth it cannot be set to.
    let text = at_home(&broken(
        "    evaluated_max_depth_mm: {value: 1.5, evidence: IFU, sources: [ifu]}\n",
        "    evaluated_max_depth_mm: {value: 1.5, evidence: IFU, sources: [ifu]}\n    fixed_depth: true\n",
    ));
    let line = assert_problem(
        &text,
        "devices[0].treatments[0]",
        "fixed-length device 'pen' has 2.5 mm needles, deeper than the 'home' setting's cap of 0.25 mm for 'microneedling'",
    );
    assert_eq!(
        line,
        Some(line_of(&text, "- id: pen")),
        "the line of the device"
    );
}

#[test]
fn an_adjustable_device_at_home_is_capped_not_refused() {
    // The same pen without `fixed_depth` can be dialled down: the setting caps it instead.
    load(&at_home(MINI)).expect("an adjustable pen may serve a capped setting");
}

#[test]
fn a_fixed_length_device_within_the_settings_cap_loads() {
    let text = at_home(&broken(
        "    max_depth_mm: {value: 2.5, evidence: IFU, sources: [ifu]}\n    evaluated_max_depth_mm: {value: 1.5, evidence: IFU, sources: [ifu]}\n",
        "    max_depth_mm: {value: 0.2, evidence: IFU, sources: [ifu]}\n    fixed_depth: true\n",
    ));
    load(&text).expect("a 0.2 mm roller fits under a 0.25 mm home cap");
}

#[test]
fn an_overlay_tightening_a_setting_below_a_fixed_devices_needle_is_refused() {
    let base_text = at_home(&broken(
        "    max_depth_mm: {value: 2.5, evidence: IFU, sources: [ifu]}\n    evaluated_max_depth_mm: {value: 1.5, evidence: IFU, sources: [ifu]}\n",
        "    max_depth_mm: {value: 0.2, evidence: IFU, sources: [ifu]}\n    fixed_depth: true\n",
    ));
    let base = parse_document(&base_text, Format::Yaml).expect("base");
    let doc = parse_document(
        "id: clinic\nversion: '1'\nextends: mini\ntighten:\n  settings:\n    - {id: home, max_depth_mm: 0.1}\n",
        Format::Yaml,
    )
    .expect("overlay parses");
    let err = compile(&doc, Some(&base)).expect_err("the roller no longer fits");
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == "devices[0].treatments[0]" && p.message.contains("cap of 0.1 mm")),
        "{err}"
    );
}

/// The mini rule set with a rule-set-level cap of 0.5 mm for acne scars.
fn with_indication_cap(text: &str) -> String {
    assert_eq!(text.matches("\ntreatments:\n").count(), 1);
    text.replacen(
        "\ntreatments:\n",
        "\nindication_caps:\n  - {indication: acne_scars, max_depth_mm: {value: 0.5, evidence: IFU, sources: [ifu]}}\ntreatments:\n",
        1,
    )
}

fn acne_scar_cheeks(rs: &RuleSet) -> f64 {
    let req = protocol_engine::DepthLimitsRequest {
        explain: false,
        ruleset_version: None,
        ruleset_digest: None,
        treatment: "microneedling".into(),
        device: "pen".into(),
        role: "physician".into(),
        zone: Some("cheeks".into()),
        indication: Some("acne_scars".into()),
        facts: None,
        questionnaire_response: None,
        date: None,
        history: None,
    };
    let l = rs.depth_limits(&req).expect("valid");
    assert_eq!(
        l.zones[0].bound_by,
        vec![protocol_engine::Bound::Indication]
    );
    l.zones[0].max_depth_mm.mm()
}

#[test]
fn a_rule_set_indication_cap_binds_a_treatment_that_lists_none() {
    let rs = load(&with_indication_cap(MINI)).expect("valid");
    assert_eq!(acne_scar_cheeks(&rs), 0.5);
}

#[test]
fn a_treatment_cap_above_the_rule_sets_indication_cap_is_refused() {
    let text = with_indication_cap(&broken(
        "    aftercare:\n      duration_days",
        "    indication_caps:\n      - {indication: acne_scars, max_depth_mm: {value: 1.5, evidence: IFU, sources: [ifu]}}\n    aftercare:\n      duration_days",
    ));
    let line = assert_problem(
        &text,
        "treatments[0].indication_caps[0].max_depth_mm",
        "cap 1.5 mm for 'acne_scars' is above the rule set's 0.5 mm (indication_caps[0])",
    );
    assert_eq!(line, Some(line_of(&text, "- id: microneedling")));
}

#[test]
fn an_unknown_indication_in_a_rule_set_cap_is_named() {
    let text =
        with_indication_cap(MINI).replace("{indication: acne_scars,", "{indication: acne_scar,");
    assert_problem(
        &text,
        "indication_caps[0].indication",
        "unknown indication 'acne_scar' (did you mean 'acne_scars'?)",
    );
}

fn overlay_on(base_text: &str, body: &str) -> Result<RuleSet, LoadError> {
    let base = parse_document(base_text, Format::Yaml).expect("base");
    let doc = parse_document(
        &format!("id: clinic\nversion: '1'\nextends: mini\n{body}"),
        Format::Yaml,
    )
    .expect("overlay parses");
    compile(&doc, Some(&base))
}

#[test]
fn overlay_may_not_declare_indication_caps() {
    assert_overlay(
        "indication_caps:\n  - {indication: acne_scars, max_depth_mm: {value: 0.25, evidence: CLINIC_POLICY}}\n",
        "indication_caps",
        "an overlay may not declare indication_caps",
    );
}

#[test]
fn overlay_looser_indication_cap_is_refused_and_a_tighter_one_binds() {
    let base = with_indication_cap(MINI);
    let err = overlay_on(
        &base,
        "tighten:\n  indication_caps:\n    - {id: acne_scars, max_depth_mm: 1.0}\n",
    )
    .expect_err("loosening refused");
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == "tighten.indication_caps[0].max_depth_mm"
                && p.message.contains("base 0.5 mm, overlay 1 mm")),
        "{err}"
    );
    let rs = overlay_on(
        &base,
        "tighten:\n  indication_caps:\n    - {id: acne_scars, max_depth_mm: 0.25, note: clinic director}\n",
    )
    .expect("tightening accepted");
    assert_eq!(acne_scar_cheeks(&rs), 0.25);
    // A cap the base does not have is a tightening too: it binds every needle treatment.
    let rs = overlay_on(
        MINI,
        "tighten:\n  indication_caps:\n    - {id: acne_scars, max_depth_mm: 0.75}\n",
    )
    .expect("a new cap is accepted");
    assert_eq!(acne_scar_cheeks(&rs), 0.75);
}

#[test]
fn enum_labels_are_served_and_label_every_value_or_none() {
    let labelled = broken(
        "{id: rosacea, type: enum, values: [none, papulopustular], question: Rosacea?}",
        "{id: rosacea, type: enum, values: [none, papulopustular], labels: {none: No rosacea, papulopustular: Bumps and pimples}, question: Rosacea?}",
    );
    let rs = load(&labelled).expect("labelled enum is valid");
    let facts = rs.facts();
    let rosacea = facts
        .facts
        .iter()
        .find(|f| f.id == "rosacea")
        .expect("rosacea");
    assert_eq!(rosacea.labels["papulopustular"], "Bumps and pimples");
    assert_eq!(rosacea.labels.len(), 2);
    // Unlabelled facts carry no labels.
    let rs = load(MINI).expect("valid");
    assert!(rs.facts().facts.iter().all(|f| f.labels.is_empty()));

    let missing = broken(
        "{id: rosacea, type: enum, values: [none, papulopustular], question: Rosacea?}",
        "{id: rosacea, type: enum, values: [none, papulopustular], labels: {none: No rosacea}, question: Rosacea?}",
    );
    assert_problem(
        &missing,
        "facts[3].labels.papulopustular",
        "label every value or none",
    );
    let unknown = broken(
        "{id: rosacea, type: enum, values: [none, papulopustular], question: Rosacea?}",
        "{id: rosacea, type: enum, values: [none, papulopustular], labels: {none: No, papulopustular: Bumps, papulopustula: Typo}, question: Rosacea?}",
    );
    assert_problem(
        &unknown,
        "facts[3].labels.papulopustula",
        "unknown value 'papulopustula' (did you mean 'papulopustular'?)",
    );
    let empty = broken(
        "{id: rosacea, type: enum, values: [none, papulopustular], question: Rosacea?}",
        "{id: rosacea, type: enum, values: [none, papulopustular], labels: {none: ' ', papulopustular: Bumps}, question: Rosacea?}",
    );
    assert_problem(&empty, "facts[3].labels.none", "must not be empty");
    let not_enum = broken(
        "{id: pregnant, type: bool",
        "{id: pregnant, type: bool, labels: {yes: Yes}",
    );
    assert_problem(
        &not_enum,
        "facts[1].labels",
        "`labels` is only for enum facts",
    );
}

// ---- Codes (issue 15 §1) ----------------------------------------------------------------------

#[test]
fn codes_are_served_on_facts_zones_procedures_and_treatments() {
    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes: [{system: \"http://snomed.info/sct\", code: \"77386006\", display: Pregnant}, {system: \"http://loinc.org\", code: \"82810-3\", display: Pregnancy status}]}",
    )
    .replacen(
        "{id: cheeks, name: Cheeks}",
        "{id: cheeks, name: Cheeks, codes: [{system: \"http://snomed.info/sct\", code: \"36141000\", display: Skin of cheek}]}",
        1,
    );
    let rs = load(&text).expect("coded rule set loads");
    let fact = rs.facts().facts.into_iter().find(|f| f.id == "pregnant");
    let codes: Vec<String> = fact
        .expect("pregnant")
        .codes
        .iter()
        .map(|c| format!("{}|{}", c.system, c.code))
        .collect();
    assert_eq!(
        codes,
        [
            "http://snomed.info/sct|77386006",
            "http://loinc.org|82810-3"
        ]
    );
    let zone = rs.catalogue().zones.into_iter().find(|z| z.id == "cheeks");
    assert_eq!(zone.expect("cheeks").codes[0].display, "Skin of cheek");
    let uncoded = rs
        .catalogue()
        .zones
        .into_iter()
        .find(|z| z.id == "forehead");
    assert!(uncoded.expect("forehead").codes.is_empty());
}

#[test]
fn an_unknown_code_system_is_named_with_path_and_line() {
    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes: [{system: \"http://snomed.org/sct\", code: \"77386006\", display: Pregnant}]}",
    );
    let line = assert_problem(
        &text,
        "facts[1].codes[0].system",
        "unknown code system 'http://snomed.org/sct' (known: http://snomed.info/sct, http://loinc.org",
    );
    assert_eq!(line, Some(line_of(&text, "{id: pregnant")));
}

#[test]
fn empty_codes_a_blank_display_a_duplicate_and_a_bad_check_digit_are_refused() {
    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes: []}",
    );
    assert_problem(&text, "facts[1].codes", "must not be empty");

    let text = broken(
        "{id: botulinum_toxin, name: Botulinum toxin}",
        "{id: botulinum_toxin, name: Botulinum toxin, codes: [{system: \"http://snomed.info/sct\", code: \"77386006\", display: \" \"}, {system: \"http://snomed.info/sct\", code: \"77386006\", display: Pregnant}, {system: \"http://loinc.org\", code: \"82810-4\", display: Pregnancy status}]}",
    );
    assert_problem(&text, "procedures[1].codes[0].display", "must not be empty");
    assert_problem(
        &text,
        "procedures[1].codes[1].code",
        "duplicate code '77386006' of http://snomed.info/sct",
    );
    assert_problem(
        &text,
        "procedures[1].codes[2].code",
        "its check digit is wrong (mod 10)",
    );

    let text = broken(
        "{id: acne_scars, name: Acne scars}",
        "{id: acne_scars, name: Acne scars, codes: [{system: \"http://www.whocc.no/atc\", code: \"B01a\", display: Antithrombotic agents}]}",
    );
    assert_problem(
        &text,
        "indications[0].codes[0].code",
        "is not a http://www.whocc.no/atc code",
    );
}

#[test]
fn what_codes_mean_is_declared_and_needs_codes() {
    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes_mean: ever}",
    );
    assert_problem(&text, "facts[1].codes_mean", "give `codes` too");

    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes_mean: allergy, codes: [{system: \"http://snomed.info/sct\", code: \"77386006\", display: Pregnant}]}",
    );
    let rs = load(&text).expect("loads");
    assert_eq!(
        rs.codes_mean("pregnant"),
        Some(protocol_engine::CodesMean::Allergy)
    );
    assert_eq!(
        rs.codes_mean("fitzpatrick"),
        Some(protocol_engine::CodesMean::Now)
    );
    assert_eq!(rs.codes_mean("no_such_fact"), None);

    let text = broken(
        "{id: pregnant, type: bool, question: Are you pregnant?}",
        "{id: pregnant, type: bool, question: Are you pregnant?, codes_mean: sometimes}",
    );
    assert!(load(&text).is_err(), "an unknown meaning is refused");
}

#[test]
fn an_interaction_then_gives_exactly_one_of_days_or_unstated() {
    let text = broken(
        "    then: {days: {value: 14, evidence: IFU, sources: [ifu]}}",
        "    then: {days: {value: 14, evidence: IFU, sources: [ifu]}, unstated: \"both\"}",
    );
    assert_problem(&text, "interactions[0].then", "exactly one of `days`");
}

// ---- service codes -------------------------------------------------------------------------

/// The mini rule set with a `service_codes` table.
fn with_service_codes(rows: &str) -> String {
    format!("{MINI}\nservice_codes:\n{rows}")
}

#[test]
fn a_service_code_books_a_known_treatment_once() {
    let ok = with_service_codes(
        "  - {system: \"https://clinic.example/services\", code: MN-60, display: Microneedling 60 min, treatment: microneedling}\n",
    );
    let rs = load(&ok).expect("a valid table loads");
    assert_eq!(rs.service_codes().len(), 1);
    assert_eq!(rs.service_codes()[0].treatment, "microneedling");

    let text = with_service_codes(
        "  - {system: \"https://clinic.example/services\", code: MN-60, treatment: microneedlng}\n",
    );
    assert_problem(&text, "service_codes[0].treatment", "unknown treatment");

    let text = with_service_codes(concat!(
        "  - {system: \"https://clinic.example/services\", code: MN-60, treatment: microneedling}\n",
        "  - {system: \"https://clinic.example/services\", code: MN-60, treatment: microneedling}\n",
    ));
    let line = assert_problem(
        &text,
        "service_codes[1]",
        "mapped already at service_codes[0]",
    );
    assert_eq!(line, Some(line_of(&text, "service_codes:") + 2));

    let text = with_service_codes(
        "  - {system: \"urn:treatment-protocol:treatment\", code: microneedling, treatment: microneedling}\n",
    );
    assert_problem(
        &text,
        "service_codes[0].system",
        "names every treatment by its id",
    );

    let text = with_service_codes("  - {system: snomed, code: \"1\", treatment: microneedling}\n");
    assert_problem(&text, "service_codes[0].system", "not a code system URI");
}
