//! TLS for tests of certificate-bound tokens (RFC 8705): a throwaway PKI made with the
//! `openssl` command line (a CA, a server certificate for `127.0.0.1`, client certificates),
//! Envoy's downstream TLS context requiring a client certificate, and HTTPS requests made
//! with `curl` presenting one of the client certificates.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate's DER bytes (what `cnf.x5t#S256` hashes).
    pub der: Vec<u8>,
}

/// A CA, the server's certificate and named client certificates, all in `dir`.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server: CertFiles,
    clients: Vec<(String, CertFiles)>,
}

/// Runs a tool the tests need from the machine (`openssl`, `curl`), panicking with its error
/// output when it fails.
fn run(command: &mut Command, what: &str) -> std::process::Output {
    let tool = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (is {tool} installed?)"));
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn openssl(dir: &Path, args: &[&str]) {
    run(
        Command::new("openssl").args(args).current_dir(dir),
        &format!("openssl {args:?}"),
    );
}

impl TestPki {
    /// Generates the PKI in `dir` (P-256 keys, one day of validity).
    pub fn generate(dir: &Path, client_names: &[&str]) -> TestPki {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=obguard test CA",
            ],
        );
        let issue = |name: &str, subject: &str, ext: &str| -> CertFiles {
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let cert = format!("{name}.pem");
            let der = format!("{name}.der");
            let ext_file = format!("{name}.ext");
            std::fs::write(dir.join(&ext_file), ext).unwrap_or_else(|e| panic!("{e}"));
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    subject,
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "1",
                    "-extfile",
                    &ext_file,
                ],
            );
            openssl(
                dir,
                &["x509", "-in", &cert, "-outform", "DER", "-out", &der],
            );
            CertFiles {
                cert: dir.join(cert),
                key: dir.join(key),
                der: std::fs::read(dir.join(der)).unwrap_or_else(|e| panic!("{e}")),
            }
        };
        let server = issue(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        let clients = client_names
            .iter()
            .map(|name| {
                let files = issue(
                    &format!("client-{name}"),
                    &format!("/CN={name}"),
                    "extendedKeyUsage=clientAuth\n",
                );
                ((*name).to_owned(), files)
            })
            .collect();
        TestPki {
            ca: dir.join("ca.pem"),
            server,
            clients,
        }
    }

    pub fn client(&self, name: &str) -> &CertFiles {
        self.clients
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("no client certificate {name}"))
    }

    /// Envoy's downstream `transport_socket`: TLS with the server certificate, a client
    /// certificate signed by the CA required.
    pub fn downstream_transport_socket(&self) -> Value {
        json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": true,
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": {"filename": self.server.cert.to_string_lossy()},
                        "private_key": {"filename": self.server.key.to_string_lossy()},
                    }],
                    "validation_context": {
                        "trusted_ca": {"filename": self.ca.to_string_lossy()},
                    },
                },
            },
        })
    }
}

/// `GET https://127.0.0.1:port{path}` with `curl`, presenting `client`'s certificate: the
/// status and body.
pub fn https_get(
    pki: &TestPki,
    port: u16,
    path: &str,
    client: &CertFiles,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let url = format!("https://127.0.0.1:{port}{path}");
    let mut command = Command::new("curl");
    command.args(["--silent", "--show-error", "--max-time", "10", "--cacert"]);
    command
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key);
    for (name, value) in headers {
        command.arg("--header").arg(format!("{name}: {value}"));
    }
    command.args(["--write-out", "\n%{http_code}", &url]);
    let output = run(&mut command, &format!("curl {url}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
