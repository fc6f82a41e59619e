//! The access-log fields of one request, written as Envoy filter state: one property per
//! field (`access_log.format: fields`, the default: `%FILTER_STATE(wasm.obguard.outcome:PLAIN)%`)
//! or one JSON object in `obguard.log` (`json`: one host call per request instead of one per
//! field, up to thirteen; a second one after a rate-limit answer).

use crate::host::{Host, HostExt, LogLevel};
use crate::telemetry::{AccessLogFormat, log_field};

pub struct LogFields {
    format: AccessLogFormat,
    /// `json` only: the fields so far, by full name (later values replace earlier ones).
    pending: Vec<(&'static str, String)>,
}

impl LogFields {
    pub fn new(format: AccessLogFormat) -> Self {
        Self {
            format,
            pending: Vec::new(),
        }
    }

    pub fn set(&mut self, host: &dyn Host, key: &'static str, value: &str) {
        match self.format {
            AccessLogFormat::Fields => host.set_log_field(key, value),
            AccessLogFormat::Json => match self.pending.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) => value.clone_into(old),
                None => self.pending.push((key, value.to_owned())),
            },
        }
    }

    /// Writes what `set` collected (`json`; nothing to do for `fields`). Called once the
    /// request's fields are final: when it is answered or forwarded, and again after a
    /// rate-limit answer (which may refuse it).
    pub fn flush(&mut self, host: &dyn Host) {
        if self.format != AccessLogFormat::Json || self.pending.is_empty() {
            return;
        }
        let Ok(text) = serde_json::to_string(&AsObject(&self.pending)) else {
            return;
        };
        if let Err(err) = host.set_property(&[log_field::JSON], text.as_bytes()) {
            host.log(
                LogLevel::Debug,
                &format!("obguard: cannot set property {}: {err}", log_field::JSON),
            );
        }
    }
}

/// The collected fields as one JSON object, serialised without building a map.
struct AsObject<'a>(&'a [(&'static str, String)]);

impl serde::Serialize for AsObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(key, value)| (key.strip_prefix("obguard.").unwrap_or(key), value)),
        )
    }
}
