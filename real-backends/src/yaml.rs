//! A small YAML writer for JSON values: block style, keys in order, every string quoted with
//! JSON escapes (a JSON string is a valid YAML scalar), so the output is unambiguous and
//! stable for snapshots. Enough for kubernetes manifests and compose files.

use serde_json::Value;

/// `value` as a YAML document (no leading `---`).
///
/// ```
/// let v = serde_json::json!({ "kind": "Service", "spec": { "ports": [ { "port": 7001 } ] } });
/// assert_eq!(gauntlet_backends::yaml::to_yaml(&v), "kind: \"Service\"\nspec:\n  ports:\n  - port: 7001\n");
/// ```
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !k.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        // YAML 1.1 reads these as booleans or null.
        && !["y", "n", "yes", "no", "on", "off", "true", "false", "null"].contains(&k.to_ascii_lowercase().as_str());
    if plain {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn write_value(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", key(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        // Sequences sit at their key's indentation, as kubectl writes them.
                        let inner = if v.is_array() { indent } else { indent + 2 };
                        write_value(v, inner, out);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The item's first line follows the dash; the rest align under it.
                        let mut inner = String::new();
                        write_value(item, indent + 2, &mut inner);
                        let trimmed = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_and_sequences_render_in_block_style() {
        let v = json!({
            "apiVersion": "v1",
            "metadata": { "name": "x", "labels": { "app.kubernetes.io/name": "raft-kv" } },
            "spec": { "ports": [ { "name": "p0", "port": 7000 } ], "args": ["a", "b c"], "empty": [] },
            "n": null, "yes": true,
        });
        let expected = r#"apiVersion: "v1"
metadata:
  labels:
    app.kubernetes.io/name: "raft-kv"
  name: "x"
"n": null
spec:
  args:
  - "a"
  - "b c"
  empty: []
  ports:
  - name: "p0"
    port: 7000
"yes": true
"#;
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        assert_eq!(to_yaml(&json!({ "a": "3", "b": "true", "c": "x: y" })), "a: \"3\"\nb: \"true\"\nc: \"x: y\"\n");
    }
}
