//! Fetching what an EHR did not prefetch from its FHIR server (`fhirServer`), with the access
//! token it handed over (`fhirAuthorization`) — only from the FHIR servers the operator allowed
//! (`PROTOCOL_CDS_FHIR_SERVERS`): a hook call must never make this service fetch an address of
//! the caller's choosing. Off (prefetch only) when no server is configured. An entry
//! `clinic-aurora=https://…` is that clinic's server only: another clinic's key cannot make the
//! service read it (and its auditor then read that clinic's data in the decision log); an entry
//! without a clinic is every clinic's. Every URL fetched, a next page's included, is normalised
//! (`..` resolved) before it is checked to be under the server's base.
//!
//! Each missing prefetch key is fetched once (its template with the context's `patientId`),
//! all keys at once, every page of a search followed (`link` `next`, on the same server, at most
//! [`MAX_PAGES`]), each body at most [`MAX_BODY`], all within [`TIMEOUT`]. A key that cannot be
//! read stays missing: its facts unknown, or the call a 412 for `procedures`.

use std::time::Duration;

use serde_json::Value;

/// The time every fetch of one hook call has.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// The most pages of one search followed.
pub const MAX_PAGES: usize = 10;
/// The largest FHIR response read.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The FHIR client and the servers it may call.
#[derive(Debug, Clone)]
pub struct FhirFetch {
    client: reqwest::Client,
    /// Allowed base URLs, without a trailing `/`, each with the clinic it is allowed for
    /// (`None`: every clinic).
    servers: Vec<(Option<String>, String)>,
}

impl FhirFetch {
    /// `None` without servers: prefetch only.
    pub fn new(servers: &[String]) -> anyhow::Result<Option<Self>> {
        let servers: Vec<(Option<String>, String)> = servers
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once('=') {
                Some((clinic, url)) if !clinic.contains('/') => (
                    Some(clinic.trim().to_owned()),
                    url.trim().trim_end_matches('/').to_owned(),
                ),
                _ => (None, s.trim_end_matches('/').to_owned()),
            })
            .collect();
        if servers.is_empty() {
            return Ok(None);
        }
        for (_, s) in &servers {
            if !(s.starts_with("https://") || s.starts_with("http://"))
                || reqwest::Url::parse(s).is_err()
            {
                anyhow::bail!("PROTOCOL_CDS_FHIR_SERVERS: `{s}` is not an http(s) URL");
            }
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Self { client, servers }))
    }

    /// Whether `base` (a hook call's `fhirServer`) is one of the servers allowed for the
    /// caller's clinic (`None`: an open server's caller, which only clinic-less entries allow).
    pub fn allows(&self, base: &str, clinic: Option<&str>) -> bool {
        let base = base.trim_end_matches('/');
        self.servers
            .iter()
            .any(|(c, s)| s == base && c.as_deref().is_none_or(|c| Some(c) == clinic))
    }

    /// The resource a prefetch template names on `base`: a search's pages merged into one
    /// Bundle. `Err` says why not (for the card and the log; never a fact).
    pub async fn fetch(
        &self,
        base: &str,
        token: Option<&str>,
        query: String,
    ) -> Result<Value, String> {
        let base = base.trim_end_matches('/');
        let mut url = under(base, &format!("{base}/{query}"))
            .ok_or_else(|| "a query outside the server's base".to_owned())?;
        let mut merged: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let page = self.get(&url, token).await?;
            let next = next_link(&page);
            match (
                &mut merged,
                page.get("resourceType").and_then(Value::as_str),
            ) {
                (None, _) => merged = Some(page),
                (Some(m), Some("Bundle")) => {
                    let more = page.get("entry").and_then(Value::as_array).cloned();
                    if let (Some(entries), Some(more)) = (
                        m.as_object_mut()
                            .map(|o| o.entry("entry").or_insert_with(|| Value::Array(vec![]))),
                        more,
                    ) && let Some(entries) = entries.as_array_mut()
                    {
                        entries.extend(more);
                    }
                }
                _ => return Err("a search page that is not a Bundle".into()),
            }
            match next {
                None => {
                    if let Some(m) = merged.as_mut().and_then(Value::as_object_mut) {
                        m.remove("link");
                    }
                    return merged.ok_or_else(|| "no answer".into());
                }
                Some(n) => {
                    url = under(base, &n)
                        .ok_or_else(|| "a next page outside the server's base".to_owned())?;
                }
            }
        }
        Err(format!("more than {MAX_PAGES} pages"))
    }

    async fn get(&self, url: &str, token: Option<&str>) -> Result<Value, String> {
        let mut req = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/fhir+json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = req.send().await.map_err(|e| without_url(&e))?;
        if !res.status().is_success() {
            return Err(format!("HTTP {}", res.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| without_url(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("an answer above {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        // As strict as a request: a key the FHIR server gives twice is refused, not last-wins.
        protocol_engine::wire::check_json(&body, protocol_engine::wire::MAX_JSON_VALUES).map_err(
            |(path, message)| {
                format!("an answer the service cannot read strictly ({path}: {message})")
            },
        )?;
        serde_json::from_slice(&body).map_err(|_| "an answer that is not JSON".into())
    }
}

/// `url` normalised (dot segments resolved, as the request would send it), when it is under
/// `base`: a next page `{base}/../admin` is not.
fn under(base: &str, url: &str) -> Option<String> {
    let normal = reqwest::Url::parse(url).ok()?;
    let base = reqwest::Url::parse(&format!("{base}/")).ok()?;
    (normal.as_str().starts_with(base.as_str())).then(|| normal.to_string())
}

/// The error without its URL (which holds the patient id).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "could not be read".into()
    }
}

/// A Bundle's `next` page.
fn next_link(bundle: &Value) -> Option<String> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
        .map(str::to_owned)
}

/// A prefetch template with the context's patient id (percent-encoded).
pub fn render(template: &str, patient_id: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(patient_id.as_bytes()).collect();
    template.replace("{{context.patientId}}", &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_servers() {
        let f = FhirFetch::new(&["https://ehr.example.org/fhir/".into()])
            .expect("valid")
            .expect("configured");
        assert!(f.allows("https://ehr.example.org/fhir", None));
        assert!(f.allows("https://ehr.example.org/fhir/", Some("clinic-aurora")));
        assert!(!f.allows("https://ehr.example.org", None));
        assert!(!f.allows("http://169.254.169.254/latest", None));
        // A clinic's own server is that clinic's only.
        let f = FhirFetch::new(&["clinic-aurora=https://aurora.example/fhir".into()])
            .expect("valid")
            .expect("configured");
        assert!(f.allows("https://aurora.example/fhir", Some("clinic-aurora")));
        assert!(!f.allows("https://aurora.example/fhir", Some("clinic-borealis")));
        assert!(!f.allows("https://aurora.example/fhir", None));
        // Dot segments are resolved before the base is checked.
        let base = "https://aurora.example/fhir";
        assert_eq!(
            under(
                base,
                "https://aurora.example/fhir/Condition?patient=p1&page=2"
            )
            .as_deref(),
            Some("https://aurora.example/fhir/Condition?patient=p1&page=2")
        );
        assert_eq!(
            under(base, "https://aurora.example/fhir/../admin/Patient"),
            None
        );
        assert_eq!(
            under(base, "https://aurora.example/fhir/%2e%2e/admin"),
            None
        );
        assert_eq!(under(base, "https://aurora.example/fhirx/Condition"), None);
        assert!(FhirFetch::new(&[]).expect("valid").is_none());
        assert!(FhirFetch::new(&["ftp://x".into()]).is_err());
    }

    #[test]
    fn templates_encode_the_patient() {
        assert_eq!(
            render("Condition?patient={{context.patientId}}", "a b&c"),
            "Condition?patient=a+b%26c"
        );
    }
}
