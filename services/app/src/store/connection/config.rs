//! Where and how to reach Redis, read from the settings: one URL or the sentinels, TLS files,
//! an ACL user, replica acknowledgements. A setting that cannot work is named by its variable.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult,
    TlsCertificates, TlsMode,
};

use super::sentinel::SentinelLink;
use super::{Connector, Source};
use crate::config::Settings;
use crate::store::types::StoreOptions;

/// A Redis setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct RedisSettingError {
    pub setting: &'static str,
    pub message: String,
}

fn setting_error(setting: &'static str, message: impl Into<String>) -> RedisSettingError {
    RedisSettingError {
        setting,
        message: message.into(),
    }
}

/// Replicas that must acknowledge each write (`WAIT`), and for how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    pub replicas: u32,
    pub timeout: Duration,
}

/// Where and how to reach Redis. Its `Debug` prints no credential.
#[derive(Clone)]
pub struct RedisConfig {
    target: Target,
    /// The CA and client certificate, when set (`rediss://` only); else the system's CAs.
    tls: Option<TlsCertificates>,
    username: Option<String>,
    password: Option<String>,
    /// `None`: writes are acknowledged by the primary alone.
    ack: Option<ReplicaAck>,
}

#[derive(Clone)]
enum Target {
    Url(ConnectionInfo),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        master: String,
        tls: bool,
    },
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Url(info) => format!("{}", info.addr()),
            Target::Sentinel {
                sentinels, master, ..
            } => format!(
                "master '{master}' of sentinels {}",
                sentinels
                    .iter()
                    .map(|s| s.addr().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        f.debug_struct("RedisConfig")
            .field("target", &target)
            .field("tls_files", &self.tls.is_some())
            .field("username", &self.username.is_some())
            .field("password", &self.password.is_some())
            .field("ack", &self.ack)
            .finish()
    }
}

impl RedisConfig {
    /// One Redis by URL, credentials and TLS as the URL says, no replica acknowledgement.
    pub fn url(url: &str) -> RedisResult<Self> {
        Ok(Self {
            target: Target::Url(url.into_connection_info()?),
            tls: None,
            username: None,
            password: None,
            ack: None,
        })
    }

    /// The Redis settings, or `None` when Redis is not configured (neither a URL nor sentinels).
    /// Reads the password, CA, certificate and key files; checks what it can without I/O to
    /// Redis, naming the setting at fault.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, RedisSettingError> {
        let sentinels: Vec<&str> = settings
            .redis_sentinels
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let target = match (settings.redis_url.as_deref(), sentinels.is_empty()) {
            (None, true) => {
                if settings.redis_master_name.is_some() {
                    return Err(setting_error(
                        "PROTOCOL_REDIS_MASTER_NAME",
                        "set PROTOCOL_REDIS_SENTINELS too (the sentinels that know this master)",
                    ));
                }
                return Ok(None);
            }
            (Some(_), false) => {
                return Err(setting_error(
                    "PROTOCOL_REDIS_SENTINELS",
                    "set either PROTOCOL_REDIS_URL or PROTOCOL_REDIS_SENTINELS, not both",
                ));
            }
            (Some(url), true) => {
                let info = url.into_connection_info().map_err(|e| {
                    setting_error(
                        "PROTOCOL_REDIS_URL",
                        format!("not a redis:// or rediss:// URL ({e})"),
                    )
                })?;
                Target::Url(info)
            }
            (None, false) => sentinel_target(&sentinels, settings.redis_master_name.as_deref())?,
        };
        let tls = tls_files(settings)?;
        let is_tls = match &target {
            Target::Url(info) => matches!(info.addr(), ConnectionAddr::TcpTls { .. }),
            Target::Sentinel { tls, .. } => *tls,
        };
        if tls.is_some() && !is_tls {
            let setting = if settings.redis_ca_file.is_some() {
                "PROTOCOL_REDIS_CA_FILE"
            } else {
                "PROTOCOL_REDIS_CERT_FILE"
            };
            return Err(setting_error(
                setting,
                "TLS files need TLS: use a rediss:// URL (or rediss:// sentinels)",
            ));
        }
        let password = match (&settings.redis_password, &settings.redis_password_file) {
            (Some(_), Some(_)) => {
                return Err(setting_error(
                    "PROTOCOL_REDIS_PASSWORD_FILE",
                    "set either PROTOCOL_REDIS_PASSWORD or PROTOCOL_REDIS_PASSWORD_FILE, not both",
                ));
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(path)) => {
                let text = read(path, "PROTOCOL_REDIS_PASSWORD_FILE")?;
                let text = String::from_utf8(text).map_err(|_| {
                    setting_error("PROTOCOL_REDIS_PASSWORD_FILE", "the file is not UTF-8 text")
                })?;
                let password = text
                    .strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&text);
                if password.is_empty() {
                    return Err(setting_error(
                        "PROTOCOL_REDIS_PASSWORD_FILE",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(password.to_owned())
            }
            (None, None) => None,
        };
        let replicas = settings
            .redis_min_replicas_ack
            .unwrap_or(u32::from(matches!(target, Target::Sentinel { .. })));
        let ack = (replicas > 0).then(|| ReplicaAck {
            replicas,
            timeout: Duration::from_millis(settings.redis_replica_ack_timeout_ms.max(1)),
        });
        let config = Self {
            target,
            tls,
            username: settings.redis_username.clone(),
            password,
            ack,
        };
        // Parses the certificates and key now, so a bad file stops the server at start.
        config
            .connector(&StoreOptions::default())
            .map_err(|e| setting_error(tls_setting(settings), e.to_string()))?;
        Ok(Some(config))
    }

    /// The replica acknowledgement every write waits for, if any.
    pub fn replica_ack(&self) -> Option<ReplicaAck> {
        self.ack
    }

    /// A connector for these settings. No I/O.
    pub(crate) fn connector(&self, options: &StoreOptions) -> RedisResult<Connector> {
        // A write waits up to the ack timeout for WAIT's answer on top of its own.
        let response_timeout =
            options.response_timeout + self.ack.map_or(Duration::ZERO, |a| a.timeout);
        let link = match &self.target {
            Target::Url(info) => {
                let info = self.with_credentials(info.clone());
                let client = match &self.tls {
                    Some(certs) => Client::build_with_tls(info, certs.clone())?,
                    None => Client::open(info)?,
                };
                Source::Direct(Arc::new(client))
            }
            Target::Sentinel {
                sentinels,
                master,
                tls,
            } => Source::Sentinel(Arc::new(SentinelLink::new(
                self.sentinel_client(sentinels, master, *tls)?,
                options,
                response_timeout,
            ))),
        };
        Ok(Connector {
            source: link,
            ack: self.ack,
            connect_timeout: options.connect_timeout,
            response_timeout,
        })
    }

    fn with_credentials(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut redis = info.redis_settings().clone();
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        info.set_redis_settings(redis)
    }

    fn sentinel_client(
        &self,
        sentinels: &[ConnectionInfo],
        master: &str,
        tls: bool,
    ) -> RedisResult<SentinelClient> {
        let addrs = sentinels.iter().map(|s| s.addr().clone());
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
        // The sentinels' own credentials, when their URLs carry them (all the same: checked).
        if let Some(first) = sentinels.first().map(ConnectionInfo::redis_settings) {
            if let Some(username) = first.username() {
                builder = builder.set_client_to_sentinel_username(username);
            }
            if let Some(password) = first.password() {
                builder = builder.set_client_to_sentinel_password(password);
            }
        }
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certs) = &self.tls {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs.clone());
            }
        }
        builder.build()
    }
}

/// `host:port` entries (or `redis://`/`rediss://` URLs) and the master name.
fn sentinel_target(entries: &[&str], master: Option<&str>) -> Result<Target, RedisSettingError> {
    const SETTING: &str = "PROTOCOL_REDIS_SENTINELS";
    let Some(master) = master.map(str::trim).filter(|m| !m.is_empty()) else {
        return Err(setting_error(
            "PROTOCOL_REDIS_MASTER_NAME",
            "required with PROTOCOL_REDIS_SENTINELS: the master name the sentinels monitor",
        ));
    };
    let mut sentinels = Vec::with_capacity(entries.len());
    for entry in entries {
        let url = if entry.contains("://") {
            (*entry).to_owned()
        } else {
            format!("redis://{entry}")
        };
        let info = url.as_str().into_connection_info().map_err(|_| {
            setting_error(
                SETTING,
                format!("'{entry}' is not host:port, redis://host:port or rediss://host:port"),
            )
        })?;
        sentinels.push(info);
    }
    let tls = |i: &ConnectionInfo| matches!(i.addr(), ConnectionAddr::TcpTls { .. });
    let all_tls = sentinels.iter().all(tls);
    if !all_tls && sentinels.iter().any(tls) {
        return Err(setting_error(
            SETTING,
            "mixes rediss:// and plain sentinels: use TLS for all or none",
        ));
    }
    let credentials = |i: &ConnectionInfo| {
        let r = i.redis_settings();
        (
            r.username().map(str::to_owned),
            r.password().map(str::to_owned),
        )
    };
    if sentinels
        .iter()
        .any(|s| credentials(s) != credentials(&sentinels[0]))
    {
        return Err(setting_error(
            SETTING,
            "the sentinels carry different credentials: give every one the same (or none)",
        ));
    }
    Ok(Target::Sentinel {
        sentinels,
        master: master.to_owned(),
        tls: all_tls,
    })
}

/// The CA and client certificate files, read.
fn tls_files(settings: &Settings) -> Result<Option<TlsCertificates>, RedisSettingError> {
    let root_cert = settings
        .redis_ca_file
        .as_deref()
        .map(|p| read(p, "PROTOCOL_REDIS_CA_FILE"))
        .transpose()?;
    let client_tls = match (&settings.redis_cert_file, &settings.redis_key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "PROTOCOL_REDIS_CERT_FILE")?,
            client_key: read(key, "PROTOCOL_REDIS_KEY_FILE")?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(setting_error(
                "PROTOCOL_REDIS_KEY_FILE",
                "required with PROTOCOL_REDIS_CERT_FILE (the client certificate's private key)",
            ));
        }
        (None, Some(_)) => {
            return Err(setting_error(
                "PROTOCOL_REDIS_CERT_FILE",
                "required with PROTOCOL_REDIS_KEY_FILE (the client certificate)",
            ));
        }
    };
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

/// Which TLS setting a certificate error most likely concerns.
fn tls_setting(settings: &Settings) -> &'static str {
    if settings.redis_cert_file.is_some() {
        "PROTOCOL_REDIS_CERT_FILE"
    } else if settings.redis_ca_file.is_some() {
        "PROTOCOL_REDIS_CA_FILE"
    } else if settings.redis_sentinels.is_empty() {
        "PROTOCOL_REDIS_URL"
    } else {
        "PROTOCOL_REDIS_SENTINELS"
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, RedisSettingError> {
    std::fs::read(path).map_err(|e| setting_error(setting, format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Option<RedisConfig>, RedisSettingError> {
        let mut all = vec!["protocol-server"];
        all.extend_from_slice(args);
        RedisConfig::from_settings(&Settings::parse_from(all))
    }

    fn refused(args: &[&str]) -> RedisSettingError {
        config(args).expect_err("refused")
    }

    #[test]
    fn nothing_configured_is_no_redis() {
        assert!(config(&[]).expect("valid").is_none());
    }

    #[test]
    fn replica_acknowledgements_default_to_one_with_sentinels_only() {
        let url = config(&["--redis-url", "redis://127.0.0.1:6379/"])
            .expect("valid")
            .expect("configured");
        assert_eq!(url.replica_ack(), None);
        let sentinels = ["--redis-sentinels", "127.0.0.1:26379,127.0.0.1:26380"];
        let with = config(&[sentinels[0], sentinels[1], "--redis-master-name", "m"])
            .expect("valid")
            .expect("configured");
        assert_eq!(
            with.replica_ack(),
            Some(ReplicaAck {
                replicas: 1,
                timeout: Duration::from_millis(1000)
            })
        );
        let off = config(&[
            sentinels[0],
            sentinels[1],
            "--redis-master-name",
            "m",
            "--redis-min-replicas-ack",
            "0",
        ])
        .expect("valid")
        .expect("configured");
        assert_eq!(off.replica_ack(), None);
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        let e = refused(&[
            "--redis-url",
            "redis://h:1/",
            "--redis-sentinels",
            "h:26379",
            "--redis-master-name",
            "m",
        ]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_SENTINELS", "{e}");
        let e = refused(&[
            "--redis-sentinels",
            "redis://h:26379,rediss://h:26380",
            "--redis-master-name",
            "m",
        ]);
        assert!(e.message.contains("TLS for all or none"), "{e}");
        let e = refused(&[
            "--redis-sentinels",
            "redis://:a@h:26379,redis://:b@h:26380",
            "--redis-master-name",
            "m",
        ]);
        assert!(e.message.contains("credentials"), "{e}");
        assert!(
            !e.to_string().contains(":a@"),
            "no password in the message: {e}"
        );
        let e = refused(&["--redis-master-name", "m"]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_MASTER_NAME", "{e}");
        let e = refused(&["--redis-url", "nonsense://"]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_URL", "{e}");
        let e = refused(&[
            "--redis-url",
            "redis://h:1/",
            "--redis-password",
            "p",
            "--redis-password-file",
            "/nonexistent",
        ]);
        assert_eq!(e.setting, "PROTOCOL_REDIS_PASSWORD_FILE", "{e}");
    }

    #[test]
    fn the_password_file_loses_its_trailing_newline_and_debug_shows_no_secret() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\r\n").expect("written");
        let path = path.to_str().expect("utf-8");
        let c = config(&[
            "--redis-url",
            "rediss://user:url-secret@h:6380/0",
            "--redis-password-file",
            path,
        ])
        .expect("valid")
        .expect("configured");
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("url-secret"),
            "{shown}"
        );
    }
}
