//! The `Facts` schema of a rule set: one property per declared fact, typed as the engine reads
//! it (`crate::app` answers with the same [`FactList`] as `GET /v1/facts`), so a generated client
//! gets `pregnant?: boolean`, `fitzpatrick?: 1..6`, `rosacea?: "none" | ...` instead of an
//! untyped bag, and a wrongly typed answer fails to compile instead of failing at the server.

use protocol_engine::{FactInfo, FactList};
use serde_json::{Map, Value, json};

/// The pattern every request date matches (`YYYY-MM-DD`; the server also refuses impossible
/// dates such as 2026-02-30).
pub const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// The JSON Schema (OpenAPI 3.1) of the `facts` object for this rule set.
///
/// No property is required: a fact left out is *unknown*, never "no". Unknown fact ids are
/// refused by the server, hence `additionalProperties: false`. `null` is allowed only for date
/// facts that declare what it means (`null_means`), as the engine reads it.
pub fn schema(list: &FactList) -> Value {
    let properties: Map<String, Value> = list
        .facts
        .iter()
        .map(|f| (f.id.clone(), property(f)))
        .collect();
    let r = &list.ruleset;
    json!({
        "type": "object",
        "description": format!(
            "The client's answers by fact id, as rule set `{}` version `{}` declares them \
             (`GET /v1/facts` lists the same questions). Every fact is optional: a fact left out \
             is unknown, never \"no\", and a rule that needs it makes the answer `incomplete` \
             naming it in `missing_facts`. Each fact id may be given once; an undeclared id is \
             refused (400, naming `facts.<id>`).",
            r.id, r.version
        ),
        "properties": properties,
        "additionalProperties": false,
    })
}

/// One fact's schema: its type, range or values, whether `null` is allowed and what it means,
/// and its question as the description.
fn property(f: &FactInfo) -> Value {
    let mut p = match f.fact_type.as_str() {
        "bool" => json!({"type": "boolean"}),
        "integer" => {
            let mut p = json!({"type": "integer"});
            if let Some(min) = f.min {
                p["minimum"] = min.into();
            }
            if let Some(max) = f.max {
                p["maximum"] = max.into();
            }
            p
        }
        "enum" => json!({"type": "string", "enum": f.values}),
        "date" => json!({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
        // A type this module does not know yet: described, not constrained (never a wrong type).
        _ => json!({}),
    };
    let mut description = f.question.clone();
    if let Some(null_means) = &f.null_means {
        p["type"] = json!(["string", "null"]);
        description.push_str(&format!(" `null` means: {null_means}."));
    }
    if !f.labels.is_empty() {
        // The display label of each value, in the order of `enum` (as GET /v1/facts serves them).
        let labels: Vec<String> = f
            .values
            .iter()
            .filter_map(|v| f.labels.get(v).map(|l| format!("`{v}`: {l}")))
            .collect();
        description.push_str(&format!(" Values: {}.", labels.join("; ")));
    }
    p["description"] = description.into();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol_engine::RuleSetRef;

    fn fact(id: &str, kind: &str) -> FactInfo {
        FactInfo {
            id: id.into(),
            fact_type: kind.into(),
            question: format!("{id}?"),
            min: None,
            max: None,
            values: Vec::new(),
            null_means: None,
            labels: Default::default(),
            codes: Vec::new(),
        }
    }

    #[test]
    fn each_fact_is_typed_as_the_engine_reads_it() {
        let list = FactList {
            facts: vec![
                fact("pregnant", "bool"),
                FactInfo {
                    min: Some(1),
                    max: Some(6),
                    ..fact("fitzpatrick", "integer")
                },
                FactInfo {
                    values: vec!["none".into(), "papulopustular".into()],
                    ..fact("rosacea", "enum")
                },
                fact("date_of_birth", "date"),
                FactInfo {
                    null_means: Some("never took it".into()),
                    ..fact("isotretinoin_last_dose", "date")
                },
            ],
            ruleset: RuleSetRef {
                id: "base".into(),
                version: "1".into(),
                digest: "sha256:0".into(),
                base: None,
            },
        };
        let s = schema(&list);
        let p = &s["properties"];
        assert_eq!(s["additionalProperties"], false);
        assert!(s.get("required").is_none(), "every fact is optional");
        assert_eq!(p["pregnant"]["type"], "boolean");
        assert_eq!(p["pregnant"]["description"], "pregnant?");
        assert_eq!(
            (&p["fitzpatrick"]["minimum"], &p["fitzpatrick"]["maximum"]),
            (&json!(1), &json!(6))
        );
        assert_eq!(p["rosacea"]["enum"], json!(["none", "papulopustular"]));
        assert_eq!(p["date_of_birth"]["type"], "string");
        assert_eq!(p["date_of_birth"]["format"], "date");
        assert_eq!(
            p["isotretinoin_last_dose"]["type"],
            json!(["string", "null"])
        );
        assert!(
            p["isotretinoin_last_dose"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("never took it"))
        );
    }
}
