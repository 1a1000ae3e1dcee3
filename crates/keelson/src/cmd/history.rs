//! `keelson history KIND/NAME [-n NS]`: the retained revisions of one object — when, by whom,
//! and what changed between consecutive versions.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::client::{self, Client};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The object, as kubectl names it: `deployment/web`, `cm/settings`, `pods.v1/p`.
    pub object: String,
    /// Namespace of a namespaced object.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Kubeconfig to use (default: $KUBECONFIG, then /var/lib/keelson/kubeconfig.yaml).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Print each revision's full object instead of a diff from the previous one.
    #[arg(long)]
    pub full: bool,
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|_| v.to_string())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let Some((kind, name)) = args.object.split_once('/') else {
        bail!(
            "{:?}: name the object as KIND/NAME, e.g. deployment/web",
            args.object
        );
    };
    let info = api::resources::resolve(kind).with_context(|| {
        format!("{kind:?} is not a resource this server serves (try `kubectl api-resources`)")
    })?;
    let client = Client::from_kubeconfig(&client::kubeconfig_path(args.kubeconfig))?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("apiVersion", &info.api_version())
        .append_pair("resource", info.plural)
        .append_pair("name", name);
    if info.namespaced {
        query.append_pair("namespace", &args.namespace);
    }
    let (status, body) = client
        .get(&format!("/keelson/v1/history?{}", query.finish()))
        .await?;
    let doc: Value = serde_json::from_slice(&body)
        .with_context(|| format!("the server answered {status} with a non-JSON body"))?;
    if status != 200 {
        bail!(
            "{}",
            doc["message"]
                .as_str()
                .unwrap_or("the server refused the request")
        );
    }
    let revisions = doc["revisions"].as_array().cloned().unwrap_or_default();
    let title = if info.namespaced {
        format!("{}/{name} in {}", info.plural, args.namespace)
    } else {
        format!("{}/{name}", info.plural)
    };
    let compacted = match doc["oldestRetainedRevision"].as_i64() {
        Some(r) if r > 1 => format!("; history before revision {r} has been compacted away"),
        _ => String::new(),
    };
    println!(
        "{title}: {} retained revision(s){compacted}\n",
        revisions.len()
    );
    let mut previous: Option<String> = None;
    for r in &revisions {
        let who = r["by"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("(not recorded)");
        let when = r["time"].as_str().unwrap_or("(time not recorded)");
        let op = r["operation"]
            .as_str()
            .map(|o| format!(" [{o}]"))
            .unwrap_or_default();
        println!(
            "revision {}  {}  {when}  by {who}{op}",
            r["revision"],
            r["type"].as_str().unwrap_or("")
        );
        let current = yaml(&r["object"]);
        match (&previous, args.full, r["type"].as_str()) {
            (_, _, Some("DELETED")) => println!("  (deleted)"),
            (Some(prev), false, _) => {
                let diff = similar::TextDiff::from_lines(prev.as_str(), current.as_str());
                for line in diff.unified_diff().context_radius(2).to_string().lines() {
                    println!("  {line}");
                }
            }
            _ => {
                for line in current.lines() {
                    println!("  {line}");
                }
            }
        }
        println!();
        previous = Some(current);
    }
    Ok(())
}
