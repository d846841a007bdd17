//! Rule sets are plain YAML: no tags, no anchors, no aliases.
//!
//! A tag changes what a value means without changing how it reads (`!!binary` turns base64 into
//! text, an application tag may be silently dropped), and an alias makes one spelling stand for
//! another value (`id: &i clinic-aurora` then `title: *i`) or expands a few hundred bytes into
//! megabytes. None of it is needed to write a rule set, and each makes a published document mean
//! something other than what a reviewer reads. So every document is scanned once, with the same
//! parser serde-saphyr deserializes with (`granit-parser`), before it is deserialized; each tag,
//! anchor and alias is a problem naming its path and line. serde-saphyr's own options cover only
//! part of this (`reject_unsupported_tags` accepts the standard `!!` tags; the budget counts
//! aliases without naming where they are), hence the scan.

use serde_saphyr::granit_parser::{Event, Parser, Tag};

use crate::error::{LoadError, Problem};

/// The most problems one scan reports: a document made of aliases is refused with the first ones.
const MAX_PROBLEMS: usize = 50;

/// Refuses every tag, anchor and alias, naming path and line. A document that does not scan is
/// left to the deserializer, which reports the syntax error with its line.
pub(crate) fn refuse_tags_and_aliases(text: &str) -> Result<(), LoadError> {
    let mut paths = Paths::default();
    let mut problems = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let line = u64::try_from(span.start.line()).ok().filter(|l| *l > 0);
        let (anchor, tag) = match &event {
            Event::Scalar(_, _, anchor, tag)
            | Event::MappingStart(_, anchor, tag)
            | Event::SequenceStart(_, anchor, tag) => (*anchor, tag.as_deref()),
            Event::Alias(_) => {
                problems.push(Problem::new(
                    paths.current(),
                    line,
                    "YAML aliases (`*name`) are not allowed in a rule set: write the value out",
                ));
                (0, None)
            }
            _ => (0, None),
        };
        if anchor != 0 {
            problems.push(Problem::new(
                paths.current(),
                line,
                "YAML anchors (`&name`) are not allowed in a rule set: write each value out",
            ));
        }
        if let Some(tag) = tag {
            problems.push(Problem::new(
                paths.current(),
                line,
                format!(
                    "YAML tag `{}` is not allowed in a rule set: write the plain value",
                    spelled(tag)
                ),
            ));
        }
        paths.observe(&event);
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LoadError { problems })
    }
}

/// A tag as an author writes it: `!!binary`, `!secret`.
fn spelled(tag: &Tag) -> String {
    match tag.handle() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix()),
        "!" => format!("!{}", tag.suffix()),
        handle => format!("{handle}{}", tag.suffix()),
    }
}

/// Where the scan is: the path of the node an event starts (`treatments[2].zones`), in the same
/// notation as every other problem.
#[derive(Default)]
struct Paths {
    stack: Vec<Frame>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        at_key: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl Paths {
    /// The path of the node the next event starts (a mapping key is named by its mapping).
    fn current(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map {
                path, at_key: true, ..
            }) => path.clone(),
            Some(Frame::Map { path, key, .. }) => {
                let key = key.as_deref().unwrap_or("?");
                if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                }
            }
            Some(Frame::Seq { path, next }) => format!("{path}[{next}]"),
        }
    }

    fn observe(&mut self, event: &Event<'_>) {
        match event {
            Event::MappingStart(..) => {
                let path = self.current();
                self.stack.push(Frame::Map {
                    path,
                    key: None,
                    at_key: true,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.current();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.done(None);
            }
            Event::Scalar(value, ..) => self.done(Some(value)),
            Event::Alias(_) => self.done(None),
            _ => {}
        }
    }

    /// A whole node was read: a key is followed by its value, a value by the next key, an item
    /// by the next item.
    fn done(&mut self, scalar: Option<&str>) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, at_key, .. }) => {
                if *at_key {
                    *key = scalar.map(str::to_owned);
                }
                *at_key = !*at_key;
            }
            Some(Frame::Seq { next, .. }) => *next += 1,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        refuse_tags_and_aliases(text)
            .err()
            .map(|e| e.problems.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn plain_yaml_passes() {
        assert!(problems("id: a\nlist: [1, {b: c}]\nquoted: \"!x &y *z\"\n").is_empty());
    }

    #[test]
    fn tags_anchors_and_aliases_are_named_by_path_and_line() {
        let found = problems(
            "id: &i clinic\nversion: *i\nlist:\n  - x\n  - {a: !!binary QQ==}\n  - !secret s\n",
        );
        assert_eq!(
            found,
            [
                "id (line 1): YAML anchors (`&name`) are not allowed in a rule set: write each value out",
                "version (line 2): YAML aliases (`*name`) are not allowed in a rule set: write the value out",
                "list[1].a (line 5): YAML tag `!!binary` is not allowed in a rule set: write the plain value",
                "list[2] (line 6): YAML tag `!secret` is not allowed in a rule set: write the plain value",
            ]
        );
    }
}
