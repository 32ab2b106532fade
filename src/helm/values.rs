//! The gateway's values file: what duo-selfhost manages in it (`GatewayValues`, with the keys it
//! found and keeps), rendering it from templates/helm-values.yaml, and reading an installed
//! release's values back. Not the commands that hand it to helm (`plan`).

use serde_json::{Map, Value};

use super::{Release, CHART};
use crate::error::Problem;

const VALUES_TEMPLATE: &str = include_str!("../../templates/helm-values.yaml");

/// Values chart keys that duo-selfhost does not manage but found in a release; rendered back
/// unchanged so an upgrade keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeptValues {
    pub top: Map<String, Value>,
    pub image: Map<String, Value>,
    pub gitlab: Map<String, Value>,
    pub ingress: Map<String, Value>,
}

/// Everything the values file says.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayValues {
    pub image_repository: String,
    pub image_tag: String,
    /// GitLab's external URL, without a trailing slash.
    pub gitlab_url: String,
    /// The gateway's DNS name, the ingress host.
    pub domain: String,
    pub ingress_class: String,
    pub tls_secret: String,
    /// Extra environment variables for the gateway container, in order.
    pub env: Vec<(String, String)>,
    pub kept: KeptValues,
}

impl GatewayValues {
    /// `https://<domain>`: the URL GitLab reaches the gateway by.
    pub fn gateway_url(&self) -> String {
        format!("https://{}", self.domain)
    }

    pub fn image(&self) -> String {
        format!("{}:{}", self.image_repository, self.image_tag)
    }
}

/// GitLab's API base as the chart wants it, with the trailing slash of the docs' examples.
pub fn gitlab_api_url(gitlab_url: &str) -> String {
    format!("{}/api/v4/", gitlab_url.trim_end_matches('/'))
}

/// Renders the values file.
pub fn render_values(release: &Release, values: &GatewayValues) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // minijinja would JSON-escape every `{{ }}` in a .yaml template; the template says where
    // it wants JSON (`tojson`) and keeps its comments plain.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template("helm-values.yaml", VALUES_TEMPLATE)?;
    let vars: Vec<Value> = values
        .env
        .iter()
        .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
        .collect();
    let context = serde_json::json!({
        "tool_version": env!("CARGO_PKG_VERSION"),
        "chart": CHART,
        "chart_version": release.chart_version,
        "release": release.name,
        "namespace": release.namespace,
        "image_repository": values.image_repository,
        "image_tag": values.image_tag,
        "gitlab_url": values.gitlab_url,
        "gitlab_api_url": gitlab_api_url(&values.gitlab_url),
        "domain": values.domain,
        "ingress_class": values.ingress_class,
        "tls_secret": values.tls_secret,
        "env": vars,
        "kept_top": values.kept.top,
        "kept_image": values.kept.image,
        "kept_gitlab": values.kept.gitlab,
        "kept_ingress": values.kept.ingress,
    });
    Ok(env
        .get_template("helm-values.yaml")?
        .render(template_value(&context))?)
}

/// A JSON value as a template value (minijinja is built without its serde feature).
fn template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => minijinja::Value::from(i),
            (None, Some(u)) => minijinja::Value::from(u),
            _ => minijinja::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => items.iter().map(template_value).collect(),
        Value::Object(map) => {
            minijinja::Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), template_value(v))))
        }
    }
}

/// Reads the values of an installed release (`helm get values -o json`) back into the values
/// duo-selfhost manages, keeping whatever else the release had.
pub fn values_from_release(release_values: &Value) -> Result<GatewayValues, Problem> {
    let missing = |what: &str| {
        Problem::user(format!(
            "the release's values have no {what}; it was not installed by duo-selfhost or was changed by hand"
        ))
        .hint("install it again with `duo-selfhost install --target helm`, which renders every value")
    };
    let mut top = release_values
        .as_object()
        .cloned()
        .ok_or_else(|| missing("values at all"))?;
    let mut take_map = |key: &str| match top.remove(key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut image = take_map("image");
    let mut gitlab = take_map("gitlab");
    let mut ingress = take_map("ingress");
    let env_value = top.remove("extraEnvironmentVariables");

    let string = |map: &mut Map<String, Value>, key: &str| match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let image_repository = string(&mut image, "repository").unwrap_or_default();
    let image_tag = string(&mut image, "tag").ok_or_else(|| missing("image.tag"))?;
    let gitlab_url = string(&mut gitlab, "url").ok_or_else(|| missing("gitlab.url"))?;
    gitlab.remove("apiUrl");
    ingress.remove("enabled");
    let ingress_class = string(&mut ingress, "className").unwrap_or_else(|| "nginx".into());
    let domain = ingress
        .remove("hosts")
        .and_then(|h| h.get(0)?.get("host")?.as_str().map(str::to_string))
        .ok_or_else(|| missing("ingress.hosts[0].host"))?;
    let tls_secret = ingress
        .remove("tls")
        .and_then(|t| t.get(0)?.get("secretName")?.as_str().map(str::to_string))
        .ok_or_else(|| missing("ingress.tls[0].secretName"))?;
    let env = match env_value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?.to_string();
                let value = match item.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                Some((name, value))
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(GatewayValues {
        image_repository,
        image_tag,
        gitlab_url: gitlab_url.trim_end_matches('/').to_string(),
        domain,
        ingress_class,
        tls_secret,
        env,
        kept: KeptValues {
            top,
            image,
            gitlab,
            ingress,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Release, GatewayValues) {
        (
            Release {
                name: "ai-gateway".into(),
                namespace: "ai-gateway".into(),
                chart_version: "0.5.0".into(),
            },
            GatewayValues {
                image_repository: "registry.example.com/model-gateway".into(),
                image_tag: "self-hosted-v17.5.0-ee".into(),
                gitlab_url: "https://gitlab.example.com".into(),
                domain: "gw.example.com".into(),
                ingress_class: "nginx".into(),
                tls_secret: "ai-gateway-tls".into(),
                env: vec![("A".into(), "x: 'y' #z".into())],
                kept: KeptValues::default(),
            },
        )
    }

    #[test]
    fn values_round_trip_through_the_release() {
        let (release, mut values) = sample();
        values
            .kept
            .top
            .insert("replicaCount".into(), Value::from(2));
        values
            .kept
            .image
            .insert("pullPolicy".into(), Value::from("Always"));
        let text = render_values(&release, &values).unwrap();
        let parsed: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(values_from_release(&parsed).unwrap(), values);
    }
}
