//! The admin kubeconfig written next to the data (`DATA_DIR/kubeconfig.yaml`).

use std::path::Path;

use base64::Engine as _;

/// Renders a kubeconfig for `server` with embedded credentials.
pub fn render(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: keelson
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: keelson-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: keelson
  context:
    cluster: keelson
    user: keelson-admin
current-context: keelson
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// Writes the kubeconfig atomically, readable by the owner only (it holds the admin key).
pub fn write(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
}
