//! Plugin root: loads the configuration (refusing to start on any error), hands each request
//! stream the shared state, and runs the timer (remote JWKS, model polls, pending baseline
//! updates).

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::baselines::SharedDataStore;
use super::host;
use super::host_crypto;
use super::http::ObguardHttp;
use super::jwks::{self, JwksState};
use super::metrics::Metrics;
use super::models::{self, ModelSourceState};
use crate::config::{self, FilterConfig};
use crate::pipeline::Worker;

#[derive(Default)]
pub struct ObguardRoot {
    state: Option<Rc<Shared>>,
    jwks: JwksState,
    models: ModelSourceState,
}

/// What every request of this worker shares.
pub struct Shared {
    pub config: FilterConfig,
    pub worker: RefCell<Worker>,
    pub metrics: Metrics,
}

impl Context for ObguardRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(state) = &self.state {
            if self.models.owns(token_id) {
                if let Ok(worker) = state.worker.try_borrow() {
                    models::on_response(
                        &state.config,
                        &worker,
                        &mut self.models,
                        &state.metrics,
                        token_id,
                        body_size,
                        host::now_unix_secs(),
                    );
                }
                return;
            }
            jwks::on_response(
                &state.config,
                &mut self.jwks,
                &state.metrics,
                token_id,
                body_size,
                host::now_unix_secs(),
            );
        }
    }
}

impl RootContext for ObguardRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = host::plugin_configuration().unwrap_or_default();
        match config::load(&bytes) {
            Ok(mut config) => {
                let host_crypto = host_crypto::host_offers_verify_signature();
                if host_crypto {
                    config.host_verify = Some(host_crypto::verify_signature);
                }
                let metrics = Metrics::define(&config);
                let mut worker = Worker::new(&config);
                if config.model.is_some() {
                    worker.baselines = Box::new(SharedDataStore);
                }
                let worker = RefCell::new(worker);
                // The timer: remote keys, model polls, and pending baseline updates.
                let timer =
                    config.issuers.iter().any(|i| i.remote.is_some()) || config.model.is_some();
                host::log(
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
                    config,
                    worker,
                    metrics,
                }));
                self.jwks = JwksState::default();
                self.models = ModelSourceState::default();
                if timer {
                    if let Err(status) = hostcalls::set_tick_period(jwks::TICK) {
                        host::log(
                            LogLevel::Error,
                            &format!("obguard: cannot start the key/model timer: {status:?}"),
                        );
                        return false;
                    }
                    self.on_tick();
                }
                true
            }
            Err(err) => {
                host::log(
                    LogLevel::Error,
                    &format!("obguard: invalid plugin configuration: {err}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        if let Ok(mut worker) = state.worker.try_borrow_mut() {
            let now = host::now_unix_secs();
            jwks::on_tick(
                &state.config,
                &mut worker,
                &mut self.jwks,
                &state.metrics,
                now,
            );
            models::on_tick(
                &state.config,
                &mut worker,
                &mut self.models,
                &state.metrics,
                now,
            );
            if let Some(stage) = &state.config.model {
                let now_ms = host::now_unix_ms();
                for (client, responses) in worker.pending_responses.due(now_ms) {
                    let fate =
                        stage.observe(worker.baselines.as_mut(), &client, &responses, now_ms);
                    state.metrics.record_baseline(fate);
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ObguardHttp::new(self.state.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
