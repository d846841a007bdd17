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

/// The shell blocks of a page's text.
pub fn parse(page: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut previous = "";
    let mut open: Option<(usize, Result<How, String>, Vec<&str>)> = None;
    let mut other_fence = false;
    for (n, line) in text.lines().enumerate() {
        if let Some((_, _, body)) = &mut open {
            if line == "```" {
                let (start, how, body) = open.take().expect("open");
                out.push(Block {
                    page: page.to_owned(),
                    line: start,
                    heading: heading.clone(),
                    body: body.join("\n"),
                    how,
                });
            } else {
                body.push(line);
            }
            continue;
        }
        if other_fence {
            other_fence = !line.starts_with("```");
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            if matches!(lang, "sh" | "bash" | "shell" | "console") {
                open = Some((n + 1, marker(previous), Vec::new()));
            } else {
                other_fence = true;
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
    out
}

/// The marker on the line before a block, or why there is none that reads.
fn marker(line: &str) -> Result<How, String> {
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
                return if workspace_root().join(test).is_file() {
                    Ok(How::Elsewhere(test.to_owned()))
                } else {
                    Err(format!("`in {test}`: no such test file"))
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
    let page = "intro\n\n<!-- runs: server -->\n```sh\n# describes\ncurl a | jq -c .\n# {\"x\":1}\n#\n# …\n\ncurl b\n```\n\n```json\n{}\n```\n\n## Next\n\n```sh\nno marker\n```\n<!-- runs: never: it needs a Kubernetes cluster -->\n```bash\nkubectl apply\n```\n";
    let blocks = parse("p.md", page);
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    assert_eq!(blocks[0].how, Ok(How::Server));
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
    assert_eq!(
        marker("<!-- runs: after docs/redis.md#All of it in one script -->"),
        Ok(How::After {
            page: "docs/redis.md".to_owned(),
            heading: "All of it in one script".to_owned()
        })
    );
    assert!(marker("<!-- runs: never: no -->").is_err());
    assert_eq!(
        marker("<!-- runs: in tests/tests/docs/authoring.rs -->"),
        Ok(How::Elsewhere("tests/tests/docs/authoring.rs".to_owned()))
    );
    assert!(marker("<!-- runs: in tests/nope.rs -->").is_err());
}
