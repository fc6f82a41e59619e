//! The plugin (proxy-wasm root context): loads the configuration (refusing to start on any
//! error), hands each request stream the shared state, routes callout answers, and runs the
//! timer (remote JWKS, model polls, pending baseline updates).

use std::cell::RefCell;
use std::rc::Rc;

use super::host_crypto;
use super::jwks_fetch::{self, JwksState};
use super::metrics::Metrics;
use super::model_poll::{self, ModelSourceState};
use super::shared_baselines::SharedDataStore;
use super::stream::Stream;
use crate::config::{self, FilterConfig};
use crate::host::{Buffer, Host, HostExt, LogLevel};
use crate::identify::host_crypto::HostVerifyFn;
use crate::pipeline::Worker;

/// What every request of this worker shares.
pub struct Shared {
    pub host: Rc<dyn Host>,
    pub config: FilterConfig,
    pub worker: RefCell<Worker>,
    pub metrics: Metrics,
}

pub struct Plugin {
    host: Rc<dyn Host>,
    /// Signature checks through the host, bound by the adapter to the host it runs in (a
    /// plain function pointer, because the verified-token path stores it in the config).
    host_verify: Option<HostVerifyFn>,
    state: Option<Rc<Shared>>,
    jwks: JwksState,
    models: ModelSourceState,
}

impl Plugin {
    pub fn new(host: Rc<dyn Host>, host_verify: Option<HostVerifyFn>) -> Self {
        Self {
            host,
            host_verify,
            state: None,
            jwks: JwksState::default(),
            models: ModelSourceState::default(),
        }
    }

    /// A new request stream of this plugin.
    pub fn stream(&self) -> Stream {
        Stream::new(self.host.clone(), self.state.clone())
    }

    /// Loads the plugin configuration; `false` (Envoy then refuses the plugin) on any error.
    pub fn configure(&mut self) -> bool {
        let host = self.host.as_ref();
        let bytes = match host.buffer(Buffer::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes,
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("obguard: cannot read plugin configuration: {err}"),
                );
                return false;
            }
        };
        let mut config = match config::load(&bytes) {
            Ok(config) => config,
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("obguard: invalid plugin configuration: {err}"),
                );
                return false;
            }
        };
        let host_crypto =
            self.host_verify.is_some() && host_crypto::host_offers_verify_signature(host);
        if host_crypto {
            config.host_verify = self.host_verify;
        }
        let metrics = Metrics::define(self.host.clone(), &config);
        let mut worker = Worker::new(&config);
        if config.model.is_some() {
            worker.baselines = Box::new(SharedDataStore::new(self.host.clone()));
        }
        if config.uses_shared_slots() {
            worker.shared_slots = Box::new(SharedDataStore::new(self.host.clone()));
        }
        // The timer: remote keys, model polls, and pending baseline updates.
        let timer = config.issuers.iter().any(|i| i.remote.is_some()) || config.model.is_some();
        host.log(
            LogLevel::Info,
            &format!(
                "obguard: configured {} issuer(s), {} route(s); host signature verification {}",
                config.issuers.len(),
                config.routes.len(),
                if host_crypto {
                    "available"
                } else {
                    "unavailable"
                }
            ),
        );
        self.state = Some(Rc::new(Shared {
            host: self.host.clone(),
            config,
            worker: RefCell::new(worker),
            metrics,
        }));
        self.jwks = JwksState::default();
        self.models = ModelSourceState::default();
        if timer {
            if let Err(err) = host.set_tick_period(jwks_fetch::TICK) {
                host.log(
                    LogLevel::Error,
                    &format!("obguard: cannot start the key/model timer: {err}"),
                );
                return false;
            }
            self.on_tick();
        }
        true
    }

    pub fn on_tick(&mut self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let host = self.host.as_ref();
        let Ok(mut worker) = state.worker.try_borrow_mut() else {
            return;
        };
        let now = host.now_secs();
        jwks_fetch::on_tick(
            host,
            &state.config,
            &mut worker,
            &mut self.jwks,
            &state.metrics,
            now,
        );
        model_poll::on_tick(
            host,
            &state.config,
            &mut worker,
            &mut self.models,
            &state.metrics,
        );
        if let Some(stage) = &state.config.model {
            let now_ms = host.now_ms();
            for (client, responses) in worker.pending_responses.due(now_ms) {
                let fate = stage.observe(worker.baselines.as_mut(), &client, &responses, now_ms);
                state.metrics.record_baseline(fate);
            }
        }
    }

    /// A callout this plugin started (JWKS fetch or model poll) answered or failed.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let host = self.host.as_ref();
        if self.models.owns(token) {
            if let Ok(worker) = state.worker.try_borrow() {
                model_poll::on_response(
                    host,
                    &state.config,
                    &worker,
                    &mut self.models,
                    &state.metrics,
                    token,
                    body_size,
                );
            }
            return;
        }
        jwks_fetch::on_response(
            host,
            &state.config,
            &mut self.jwks,
            &state.metrics,
            token,
            body_size,
            host.now_secs(),
        );
    }
}
