//! The shell blocks of the documentation, how each says it runs, and the output it shows.
//!
//! Every ```` ```sh ```` block of README.md and docs/*.md is preceded by one marker (an HTML
//! comment, invisible on the rendered page):
//!
//! - `<!-- runs: server -->`: against a fresh server on its embedded default (bundled rule sets,
//!   no keys, no Redis), as the README's first command starts it;
//! - `<!-- runs: alone -->`: the block starts what it needs itself (Redis, replicas) or needs
//!   nothing but the repository;
//! - `<!-- runs: continues -->`: in the same shell as the block before it on the page (its
//!   variables, its servers, the state it left);
//! - `<!-- runs: after PAGE#HEADING -->`: in the same shell as the first block under `## HEADING`
//!   of PAGE (e.g. the README's admin calls after docs/redis.md's script);
//! - `<!-- runs: in tests/…rs -->`: a test of its own runs it (with what it needs that the
//!   chains here do not set up), named by its file;
//! - `<!-- runs: never: WHY -->`: not run; WHY says why (it streams until Ctrl-C, it needs a
//!   Kubernetes cluster, ...).
//!
//! A runnable marker may end in `; errors shown`: the block shows a `4xx` answer on purpose (a
//! refusal naming the field). Without it, any HTTP answer of `400` or more that a `curl` of the
//! block gets fails the test, shown output or not; a `5xx` always does.
//!
//! **Shown output.** In a block, a paragraph (lines up to a blank line) that ends in comment
//! lines after its last command shows that command's output: `# {"decision":"incomplete"}`, one
//! comment line per output line, `…` standing for any text. Comments before a command describe
//! it and are not output.

use protocol_tests::workspace_root;

/// How a block runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Server,
    Alone,
    Continues,
    After { page: String, heading: String },
    Elsewhere(String),
    Never(String),
}

/// One shell block of a page.
#[derive(Debug, Clone)]
pub struct Block {
    /// `; errors shown`: its `curl`s may get `4xx` answers.
    pub errors_shown: bool,
    pub page: String,
    /// The line of its opening fence (1-based).
    pub line: usize,
    /// The `##` heading it sits under (`""` before the first).
    pub heading: String,
    pub body: String,
    pub how: Result<How, String>,
}

impl Block {
    /// `page:line`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }

    /// The output the block shows, paragraph by paragraph: each a list of lines, in order.
    pub fn shown(&self) -> Vec<Vec<String>> {
        self.body
            .split("\n\n")
            .filter_map(|paragraph| {
                let lines: Vec<&str> = paragraph.lines().collect();
                let last_command = lines.iter().rposition(|l| !is_comment(l))?;
                let shown: Vec<String> = lines[last_command + 1..]
                    .iter()
                    .map(|l| {
                        let l = l.trim_start();
                        l.strip_prefix("# ").unwrap_or(&l[1..]).to_owned()
                    })
                    .collect();
                (!shown.is_empty()).then_some(shown)
            })
            .collect()
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The pages whose blocks are checked.
pub fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(workspace_root().join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Every shell block of `page`.
pub fn blocks(page: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(workspace_root().join(page)).expect("page");
    parse(page, &text)
}

/// A block's marker as read: how it runs and whether it shows errors, or why it does not read.
type Marker = Result<(How, bool), String>;

/// The shell blocks of a page's text (fences may be indented, as in a list item; a block whose
/// fence is never closed is one that cannot be run, said so).
pub fn parse(page: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut previous = "";
    // An open shell block: its first line, marker, indentation and body.
    let mut open: Option<(usize, Marker, usize, Vec<String>)> = None;
    let mut other_fence: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((_, _, at, body)) = &mut open {
            if trimmed.trim_end() == "```" {
                let (start, how, _, body) = open.take().expect("open");
                out.push(block(page, start, &heading, body.join("\n"), how));
            } else {
                body.push(line.get(*at..).unwrap_or(trimmed).to_owned());
            }
            continue;
        }
        if other_fence.is_some() {
            if trimmed.starts_with("```") {
                other_fence = None;
            }
            continue;
        }
        if let Some(lang) = trimmed.strip_prefix("```") {
            if matches!(lang.trim(), "sh" | "bash" | "shell" | "console") {
                open = Some((n + 1, marker(previous), indent, Vec::new()));
            } else {
                other_fence = Some(n + 1);
            }
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.trim().to_owned();
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    if let Some((start, _, _, body)) = open {
        out.push(block(
            page,
            start,
            &heading,
            body.join("\n"),
            Err("its fence is never closed".into()),
        ));
    }
    out
}

fn block(page: &str, line: usize, heading: &str, body: String, how: Marker) -> Block {
    Block {
        page: page.to_owned(),
        line,
        heading: heading.to_owned(),
        body,
        errors_shown: how.as_ref().is_ok_and(|(_, e)| *e),
        how: how.map(|(h, _)| h),
    }
}

/// The marker on the line before a block (and whether it shows errors), or why there is none
/// that reads.
fn marker(line: &str) -> Marker {
    let Some(inner) = line
        .trim()
        .strip_prefix("<!-- runs:")
        .and_then(|l| l.strip_suffix("-->"))
    else {
        return Err(format!(
            "no `<!-- runs: … -->` line before the block (the line before is `{line}`)"
        ));
    };
    let inner = inner.trim();
    if !inner.starts_with("never:")
        && let Some(kind) = inner.strip_suffix("; errors shown")
    {
        return how(kind.trim()).map(|h| (h, true));
    }
    how(inner).map(|h| (h, false))
}

/// A marker's kind.
fn how(inner: &str) -> Result<How, String> {
    match inner {
        "server" => Ok(How::Server),
        "alone" => Ok(How::Alone),
        "continues" => Ok(How::Continues),
        _ => {
            if let Some(why) = inner.strip_prefix("never:") {
                let why = why.trim();
                return if why.len() < 12 {
                    Err(format!("`never:` says too little about why: `{why}`"))
                } else {
                    Ok(How::Never(why.to_owned()))
                };
            }
            if let Some(test) = inner.strip_prefix("in ") {
                let test = test.trim();
                return if test.starts_with("tests/") && workspace_root().join(test).is_file() {
                    Ok(How::Elsewhere(test.to_owned()))
                } else {
                    Err(format!("`in {test}`: no such test file under tests/"))
                };
            }
            if let Some((page, heading)) = inner
                .strip_prefix("after ")
                .and_then(|t| t.trim().split_once('#'))
            {
                return Ok(How::After {
                    page: page.to_owned(),
                    heading: heading.to_owned(),
                });
            }
            Err(format!("unknown marker `{inner}`"))
        }
    }
}

#[test]
fn markers_paragraphs_and_shown_output_read_as_documented() {
    let page = "intro\n\n<!-- runs: server -->\n```sh\n# describes\ncurl a | jq -c .\n# {\"x\":1}\n#\n# …\n\ncurl b\n```\n\n```json\n{}\n```\n\n## Next\n\n```sh\nno marker\n```\n<!-- runs: never: it needs a Kubernetes cluster -->\n```bash\nkubectl apply\n```\n\n- a list item:\n\n  <!-- runs: server; errors shown -->\n  ```sh\n  curl c\n  ```\n\n<!-- runs: alone -->\n```sh\nnever closed\n";
    let blocks = parse("p.md", page);
    assert_eq!(blocks.len(), 5, "{blocks:?}");
    assert_eq!(blocks[0].how, Ok(How::Server));
    assert!(!blocks[0].errors_shown);
    assert_eq!(blocks[0].line, 4);
    assert_eq!(
        blocks[0].shown(),
        vec![vec!["{\"x\":1}".to_owned(), String::new(), "…".to_owned()]]
    );
    assert!(blocks[1].how.is_err(), "{:?}", blocks[1].how);
    assert_eq!(blocks[1].heading, "Next");
    assert_eq!(
        blocks[2].how,
        Ok(How::Never("it needs a Kubernetes cluster".to_owned()))
    );
    // An indented block (a list item's) is found, its indentation stripped.
    assert_eq!(
        (&blocks[3].how, blocks[3].errors_shown),
        (&Ok(How::Server), true)
    );
    assert_eq!(blocks[3].body, "curl c");
    // A fence never closed is a fault, not the rest of the page swallowed.
    assert!(
        blocks[4]
            .how
            .as_ref()
            .is_err_and(|e| e.contains("never closed"))
    );
    assert_eq!(
        how("after docs/redis.md#All of it in one script"),
        Ok(How::After {
            page: "docs/redis.md".to_owned(),
            heading: "All of it in one script".to_owned()
        })
    );
    assert!(marker("<!-- runs: never: no -->").is_err());
    assert_eq!(
        marker("<!-- runs: in tests/tests/docs/authoring.rs -->"),
        Ok((
            How::Elsewhere("tests/tests/docs/authoring.rs".to_owned()),
            false
        ))
    );
    assert!(marker("<!-- runs: in tests/nope.rs -->").is_err());
    assert!(marker("<!-- runs: in README.md -->").is_err());
}
