//! Errors: a rule set that does not load, and a request that does not make sense.
//!
//! Both name the place at fault (a path into the document or the request) so that an author or a
//! caller can fix it without reading engine code. Messages are lowercase with no final period and
//! put user input in quotes.

use std::fmt;

/// One fault in a rule-set document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path into the document, e.g. `contraindications[3].when`.
    pub path: String,
    /// 1-based line in the YAML source, where the format keeps it.
    pub line: Option<u64>,
    /// What is wrong, and what would fix it where the engine can tell ("did you mean ...?").
    pub message: String,
}

impl Problem {
    /// A problem at `path` (empty for the whole document), on `line` where the format keeps lines.
    pub fn new(path: impl Into<String>, line: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "{} (line {line}): {}", self.path, self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
            (true, Some(line)) => write!(f, "line {line}: {}", self.message),
            (true, None) => write!(f, "{}", self.message),
        }
    }
}

/// A rule set that failed to load: every fault found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// Every fault found, in document order as far as the checks go: an author fixes them in one
    /// pass, not one load at a time.
    pub problems: Vec<Problem>,
}

impl LoadError {
    /// A load error of one problem (a document that does not even parse).
    pub fn single(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "rule set is invalid ({n} problem{})",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// One fault in a request, naming the field (`facts.pregnant`, `history[2].procedure`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldViolation {
    /// The request field at fault, as a path into the request (`facts.pregnant`,
    /// `history[2].procedure`, `checks[3].date`).
    pub field: String,
    /// What is wrong with it, naming the value sent and what is accepted instead.
    pub message: String,
}

/// A request the engine cannot answer as asked. Never a guess: the caller must fix the fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RequestError {
    /// Every fault of the request, so a caller fixes them all at once.
    pub violations: Vec<FieldViolation>,
}

impl RequestError {
    /// A request error about one field (used by the adapters for faults they find themselves).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            violations: vec![FieldViolation {
                field: field.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

/// Collects request faults so that one answer lists all of them.
#[derive(Default)]
pub(crate) struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renames a field in the violations collected so far.
    pub fn renamed(self, from: &str, to: &str) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|mut v| {
                    if v.field == from {
                        v.field = to.to_owned();
                    }
                    v
                })
                .collect(),
        )
    }

    /// The violations collected, in order.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }

    pub fn finish<T>(self, value: T) -> Result<T, RequestError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(RequestError { violations: self.0 })
        }
    }
}
