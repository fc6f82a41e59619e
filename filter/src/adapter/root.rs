//! Plugin root: loads the configuration (refusing to start on any error) and hands each
//! request stream the shared, read-only state.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::host;
use super::host_crypto;
use super::http::ObguardHttp;
use super::metrics::Metrics;
use crate::config::{self, FilterConfig};
use crate::identify::cache::TokenCache;

#[derive(Default)]
pub struct ObguardRoot {
    state: Option<Rc<Shared>>,
}

/// What every request of this worker shares.
pub struct Shared {
    pub config: FilterConfig,
    pub cache: RefCell<TokenCache>,
    pub metrics: Metrics,
}

impl Context for ObguardRoot {}

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
                let cache = RefCell::new(TokenCache::new(config.cache_entries));
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
                    cache,
                    metrics,
                }));
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ObguardHttp::new(self.state.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
