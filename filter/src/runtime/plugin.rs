//! The plugin (proxy-wasm root context): loads the configuration (refusing to start on any
//! error), hands each request stream the shared state, routes callout answers, and runs the
//! timer (remote JWKS, model polls, pending baseline updates).

use std::cell::RefCell;
use std::rc::Rc;

use super::host_crypto;
use super::intel_feeds;
use super::jwks_fetch::{self, JwksState};
use super::list_poll::PollState;
use super::metrics::Metrics;
use super::model_poll::{self, ModelSourceState};
use super::respond::{self, Delivery, Responder};
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
    /// Security events waiting to be sent, and the clients' recent requests they carry.
    pub responder: Responder,
}

pub struct Plugin {
    host: Rc<dyn Host>,
    /// Signature checks through the host, bound by the adapter to the host it runs in (a
    /// plain function pointer, because the verified-token path stores it in the config).
    host_verify: Option<HostVerifyFn>,
    state: Option<Rc<Shared>>,
    jwks: JwksState,
    models: ModelSourceState,
    delivery: Delivery,
    feeds: PollState,
}

impl Plugin {
    pub fn new(host: Rc<dyn Host>, host_verify: Option<HostVerifyFn>) -> Self {
        Self {
            host,
            host_verify,
            state: None,
            jwks: JwksState::default(),
            models: ModelSourceState::default(),
            delivery: Delivery::default(),
            feeds: PollState::default(),
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
        // The timer: remote keys, model polls, pending baseline updates, the containment
        // lists and the security events.
        let timer = config.issuers.iter().any(|i| i.remote.is_some())
            || config.model.is_some()
            || config.events.is_some()
            || config.containment.is_some()
            || config.threat_intel.is_some();
        let responder = Responder::new(&config);
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
            responder,
        }));
        self.jwks = JwksState::default();
        self.models = ModelSourceState::default();
        self.delivery = Delivery::default();
        self.feeds = PollState::default();
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
        let now_ms = host.now_ms();
        if let Some(stage) = &state.config.model {
            for (client, responses) in worker.pending_responses.due(now_ms) {
                let fate = stage.observe(worker.baselines.as_mut(), &client, &responses, now_ms);
                state.metrics.record_baseline(fate);
            }
        }
        respond::on_tick(host, &state, &mut worker, &mut self.delivery, now_ms);
        if let Some(intel) = &state.config.threat_intel {
            intel_feeds::on_tick(
                host,
                intel,
                &mut worker,
                &mut self.feeds,
                &state.metrics,
                now,
            );
        }
    }

    /// A callout this plugin started (JWKS fetch, model poll, event POST) answered or failed.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let host = self.host.as_ref();
        if let Some(intel) = &state.config.threat_intel
            && self.feeds.owns(token).is_some()
        {
            intel_feeds::on_response(
                host,
                intel,
                &mut self.feeds,
                &state.metrics,
                token,
                body_size,
                host.now_secs(),
            );
            return;
        }
        if self.delivery.owns(token) {
            respond::on_response(
                host,
                &state,
                &mut self.delivery,
                token,
                body_size,
                host.now_ms(),
            );
            return;
        }
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
