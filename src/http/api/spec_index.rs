//! The API's own OpenAPI document, indexed once at startup by path template and method:
//! the methods a path allows (for the `Allow` header of a 405) and the schema of each
//! operation's JSON request body, which every body is checked against strictly before
//! poem-openapi reads it.
//!
//! poem-openapi reads JSON leniently: `null` in an optional field is taken as absent, and
//! a number or boolean sent for a string field is taken as its text. A client that sends
//! either has a bug the API should name, not hide, so the body is held to the JSON types
//! the spec states: `null` only where a field is `nullable`, strings as JSON strings,
//! integers as integers, booleans as booleans, arrays as arrays, objects as objects,
//! down through nested objects and array items. Everything else (required fields,
//! lengths, enums, ranges) is left to poem-openapi's own validation.

use poem::http::Method;
use serde_json::{Map, Value};

/// The JSON body an operation takes.
pub(super) struct BodyRule<'a> {
    schema: &'a Value,
    /// Whether the operation asks for credentials (has a `security` requirement).
    pub(super) secured: bool,
}

/// One path of the spec.
struct SpecPath {
    /// The template split at `/`; `{param}` segments match any one segment.
    segments: Vec<String>,
    /// The methods the path allows, upper case and comma separated.
    allow: String,
    /// Each operation's JSON request body schema, where it takes one, and whether the
    /// operation asks for credentials (has a `security` requirement).
    bodies: Vec<(Method, Value, bool)>,
}

/// The spec's paths and its component schemas (which body schemas `$ref`).
pub(super) struct SpecIndex {
    paths: Vec<SpecPath>,
    schemas: Map<String, Value>,
}

/// How deep `$ref`/`allOf` chains are followed for one value; the spec's own are a
/// couple of levels, so hitting this means a cycle.
const MAX_SCHEMA_HOPS: usize = 16;

impl SpecIndex {
    pub(super) fn from_spec(spec: &str) -> Self {
        let mut spec: Value = serde_json::from_str(spec).unwrap_or_default();
        let schemas = match spec.pointer_mut("/components/schemas").map(Value::take) {
            Some(Value::Object(schemas)) => schemas,
            _ => Map::new(),
        };
        let paths = spec
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(path, operations)| {
                let operations = operations.as_object().into_iter().flatten();
                let allow = operations
                    .clone()
                    .map(|(m, _)| m.to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ");
                let bodies = operations
                    .filter_map(|(method, operation)| {
                        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes());
                        let schema = operation
                            .get("requestBody")?
                            .get("content")?
                            .as_object()?
                            .iter()
                            .find(|(content_type, _)| content_type.contains("json"))?
                            .1
                            .get("schema")?;
                        let secured = operation
                            .get("security")
                            .and_then(Value::as_array)
                            .is_some_and(|s| !s.is_empty());
                        Some((method.ok()?, schema.clone(), secured))
                    })
                    .collect();
                SpecPath {
                    segments: path.split('/').map(str::to_string).collect(),
                    allow,
                    bodies,
                }
            })
            .collect();
        SpecIndex { paths, schemas }
    }

    /// The spec path `path` (with or without the `/api` prefix) matches, as the router
    /// picks it: `{param}` segments match any one segment, and literal paths win.
    fn find(&self, path: &str) -> Option<&SpecPath> {
        let path = path.strip_prefix("/api").unwrap_or(path);
        let wanted: Vec<&str> = path.split('/').collect();
        let matches = |spec_path: &&SpecPath| {
            spec_path.segments.len() == wanted.len()
                && spec_path
                    .segments
                    .iter()
                    .zip(&wanted)
                    .all(|(s, w)| s == w || (s.starts_with('{') && !w.is_empty()))
        };
        let literal_count = |spec_path: &&SpecPath| {
            spec_path
                .segments
                .iter()
                .filter(|s| !s.starts_with('{'))
                .count()
        };
        self.paths.iter().filter(matches).max_by_key(literal_count)
    }

    /// The methods `path` allows, for the `Allow` header a 405 must carry
    /// (RFC 9110 §15.5.6).
    pub(super) fn methods(&self, path: &str) -> Option<&str> {
        self.find(path).map(|p| p.allow.as_str())
    }

    /// The body operation `method path` takes, when it takes a JSON one.
    pub(super) fn body_rule(&self, method: &Method, path: &str) -> Option<BodyRule<'_>> {
        self.find(path)?
            .bodies
            .iter()
            .find(|(m, _, _)| m == method)
            .map(|(_, schema, secured)| BodyRule {
                schema,
                secured: *secured,
            })
    }

    /// Checks `body` against the JSON types `rule`'s schema states. `Err` is the
    /// message for a 400, naming the field at fault (`profile.first_name: must be a
    /// string`).
    pub(super) fn check_body(&self, rule: &BodyRule<'_>, body: &Value) -> Result<(), String> {
        self.check(rule.schema, body, "")
    }

    /// The schemas `schema` stands for: itself, what its `$ref` names, and the parts of
    /// its `allOf`, transitively.
    fn parts<'a>(&'a self, schema: &'a Value) -> Vec<&'a Value> {
        let mut parts = Vec::new();
        let mut pending = vec![(schema, 0)];
        while let Some((schema, hops)) = pending.pop() {
            parts.push(schema);
            if hops >= MAX_SCHEMA_HOPS {
                continue;
            }
            if let Some(name) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && let Some(target) = self.schemas.get(name)
            {
                pending.push((target, hops + 1));
            }
            for part in schema
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                pending.push((part, hops + 1));
            }
        }
        parts
    }

    fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let parts = self.parts(schema);
        let declared = parts
            .iter()
            .find_map(|p| p.get("type").and_then(Value::as_str));
        if value.is_null() {
            let nullable = parts
                .iter()
                .any(|p| p.get("nullable").and_then(Value::as_bool) == Some(true));
            // A schema with no type (free-form JSON) takes any value, `null` too.
            return if nullable || declared.is_none() {
                Ok(())
            } else {
                Err(refusal(at, "must not be null"))
            };
        }
        let Some(declared) = declared else {
            return Ok(());
        };
        let fits = match declared {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            let what = match declared {
                "string" => "a string",
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "a boolean",
                "array" => "an array",
                _ => "an object",
            };
            return Err(refusal(at, &format!("must be {what}")));
        }
        match value {
            Value::Array(items) => {
                let item_schemas: Vec<&Value> =
                    parts.iter().filter_map(|p| p.get("items")).collect();
                for (i, item) in items.iter().enumerate() {
                    for item_schema in &item_schemas {
                        self.check(item_schema, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            Value::Object(fields) => {
                for (name, field) in fields {
                    let at = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    for part in &parts {
                        if let Some(property) = part.get("properties").and_then(|p| p.get(name)) {
                            self.check(property, field, &at)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `<field>: <problem>`, or for the body itself `the request body <problem>`.
fn refusal(at: &str, problem: &str) -> String {
    if at.is_empty() {
        format!("the request body {problem}")
    } else {
        format!("{at}: {problem}")
    }
}
