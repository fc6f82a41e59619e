//! A small demo Open Banking (UK OBIE v3.1-style) API serving fixture JSON files.
//!
//! Routes (an optional `/open-banking/v3.1/<aisp|pisp>` prefix is accepted and ignored):
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/accounts` | `accounts.json` |
//! | GET | `/accounts/{AccountId}` | that account |
//! | GET | `/accounts/{AccountId}/balances` | its entries from `balances.json` |
//! | GET | `/accounts/{AccountId}/transactions` | its entries from `transactions.json` |
//! | POST | `/account-access-consents` | 201, a new consent (`AwaitingAuthorisation`) |
//! | POST | `/domestic-payments` | 201, a new payment echoing `Data.Initiation` |
//! | GET | `/domestic-payments/{DomesticPaymentId}` | a payment created before |
//!
//! Anything else is a 404 (or 405 for a known path with the wrong method) with an OBIE error
//! body. Every JSON answer carries `"seen_identity": {header: value}` with the `x-obguard-*`
//! headers the bank received (what obguard told the upstream about the caller); the same object
//! is in the `x-demo-bank-seen-identity` response header.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::serve::{Received, Reply, Server};

struct Data {
    accounts: Value,
    balances: Value,
    transactions: Value,
}

#[derive(Default)]
struct State {
    next_id: u64,
    payments: HashMap<String, Value>,
}

/// The demo bank server on `127.0.0.1`. Stops on drop.
pub struct DemoBank {
    server: Server,
}

impl DemoBank {
    /// Loads `accounts.json`, `balances.json` and `transactions.json` from `data_dir` and serves
    /// them on `127.0.0.1:port` (0 = any free port).
    pub fn start(port: u16, data_dir: &Path) -> Result<DemoBank, String> {
        let load = |name: &str| -> Result<Value, String> {
            let path = data_dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))
        };
        let data = Data {
            accounts: load("accounts.json")?,
            balances: load("balances.json")?,
            transactions: load("transactions.json")?,
        };
        let state = Mutex::new(State::default());
        let server = Server::start(port, move |req| handle(&data, &state, &req))
            .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        Ok(DemoBank { server })
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves until the process ends (used by the fixture binary).
    pub fn run_forever(self) {
        self.server.join();
    }
}

fn handle(data: &Data, state: &Mutex<State>, req: &Received) -> Reply {
    let seen: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-obguard-"))
        .map(|(n, v)| (n.clone(), Value::String(v.clone())))
        .collect();
    let seen = Value::Object(seen);
    let (status, mut body) = route(data, state, req);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("seen_identity".into(), seen.clone());
    }
    let mut reply = Reply::json(status, &body);
    reply
        .headers
        .push(("x-demo-bank-seen-identity".into(), seen.to_string()));
    reply
}

fn route(data: &Data, state: &Mutex<State>, req: &Received) -> (u16, Value) {
    let path = strip_prefix(req.path());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method.as_str();
    let self_link = format!("http://127.0.0.1{}", req.path());
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => (200, json!({"status": "ok"})),
        ("GET", ["accounts"]) => (200, data.accounts.clone()),
        ("GET", ["accounts", id]) => {
            let found = filter_by_account(&data.accounts, "Account", id);
            if found.is_empty() {
                not_found(req.path())
            } else {
                (200, ob_body(json!({ "Account": found }), &self_link))
            }
        }
        ("GET", ["accounts", id, "balances"]) => account_list(data, id, "balances", &self_link),
        ("GET", ["accounts", id, "transactions"]) => {
            account_list(data, id, "transactions", &self_link)
        }
        ("POST", ["account-access-consents"]) => {
            let request: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let now = now_iso();
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.next_id += 1;
            let id = format!("urn-demobank-intent-{:05}", st.next_id);
            let permissions = request["Data"]["Permissions"].clone();
            let body = ob_body(
                json!({
                    "ConsentId": id,
                    "Status": "AwaitingAuthorisation",
                    "StatusUpdateDateTime": now,
                    "CreationDateTime": now,
                    "Permissions": if permissions.is_null() { json!(["ReadAccountsBasic"]) } else { permissions },
                    "ExpirationDateTime": request["Data"]["ExpirationDateTime"].clone(),
                }),
                &format!("{self_link}/{id}"),
            );
            (201, body)
        }
        ("POST", ["domestic-payments"]) => {
            let request: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let now = now_iso();
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.next_id += 1;
            let id = format!("pmt-{:05}", st.next_id);
            let body = ob_body(
                json!({
                    "DomesticPaymentId": id,
                    "ConsentId": request["Data"]["ConsentId"].clone(),
                    "Status": "AcceptedSettlementInProcess",
                    "CreationDateTime": now,
                    "StatusUpdateDateTime": now,
                    "Initiation": request["Data"]["Initiation"].clone(),
                }),
                &format!("{self_link}/{id}"),
            );
            st.payments.insert(id, body.clone());
            (201, body)
        }
        ("GET", ["domestic-payments", id]) => {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            match st.payments.get(*id) {
                Some(payment) => (200, payment.clone()),
                None => not_found(req.path()),
            }
        }
        (_, ["accounts"])
        | (_, ["accounts", _])
        | (_, ["accounts", _, "balances" | "transactions"])
        | (_, ["account-access-consents" | "domestic-payments"])
        | (_, ["domestic-payments", _]) => (
            405,
            ob_error(
                "405",
                "Method Not Allowed",
                "UK.OBIE.NotSupported",
                &format!("{method} is not supported on {}", req.path()),
            ),
        ),
        _ => not_found(req.path()),
    }
}

/// Removes an optional `/open-banking/v3.1/<api>` prefix.
fn strip_prefix(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/open-banking/") {
        let mut parts = rest.splitn(3, '/');
        let _version = parts.next();
        let _api = parts.next();
        if let Some(tail) = parts.next() {
            return &path[path.len() - tail.len() - 1..];
        }
    }
    path
}

fn filter_by_account(doc: &Value, key: &str, id: &str) -> Vec<Value> {
    doc["Data"][key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|item| item["AccountId"] == id)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn account_list(data: &Data, id: &str, what: &str, self_link: &str) -> (u16, Value) {
    if filter_by_account(&data.accounts, "Account", id).is_empty() {
        return not_found(self_link);
    }
    let (doc, key) = match what {
        "balances" => (&data.balances, "Balance"),
        _ => (&data.transactions, "Transaction"),
    };
    let items = filter_by_account(doc, key, id);
    (200, ob_body(json!({ key: items }), self_link))
}

fn ob_body(data: Value, self_link: &str) -> Value {
    json!({
        "Data": data,
        "Links": {"Self": self_link},
        "Meta": {"TotalPages": 1},
    })
}

fn ob_error(code: &str, message: &str, error_code: &str, detail: &str) -> Value {
    json!({
        "Code": code,
        "Message": message,
        "Errors": [{"ErrorCode": error_code, "Message": detail}],
    })
}

fn not_found(path: &str) -> (u16, Value) {
    (
        404,
        ob_error(
            "404",
            "Not Found",
            "UK.OBIE.Resource.NotFound",
            &format!("no resource at {path}"),
        ),
    )
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS+00:00`.
fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ob_prefix() {
        assert_eq!(
            strip_prefix("/open-banking/v3.1/aisp/accounts/1"),
            "/accounts/1"
        );
        assert_eq!(strip_prefix("/accounts"), "/accounts");
        assert_eq!(strip_prefix("/open-banking/v3.1"), "/open-banking/v3.1");
    }

    #[test]
    fn formats_dates() {
        let now = now_iso();
        assert_eq!(now.len(), 25, "{now}");
        assert!(now.starts_with("20"), "{now}");
    }
}
