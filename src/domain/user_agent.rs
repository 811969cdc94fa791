//! What device a session runs on (003 §1.4 DeviceInfo), read from its `User-Agent`
//! header with the `woothee` parser (a maintained, self-contained dataset: nothing to
//! load at start-up). Parsed once, when the session starts; the result is stored with it.

use std::sync::LazyLock;

/// The kind of device behind a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    /// A program rather than a browser: an API client holding a bearer token, curl,
    /// an SDK, an HTTP library.
    Api,
}

crate::domain::users::string_enum!(DeviceType { Desktop => "desktop", Mobile => "mobile", Tablet => "tablet", Api => "api" });

/// What the user agent says about the device. Unknown parts are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_type: DeviceType,
    /// `Windows`, `macOS`, `iOS`, `iPadOS`, `Android`, `Linux`, `ChromeOS`, ...
    pub platform: String,
    /// `Chrome`, `Safari`, `Firefox`, `Edge`, ..., or for a program its product name
    /// (`curl`, `okhttp`, ...).
    pub browser: String,
    pub version: String,
}

impl DeviceInfo {
    /// "Chrome 120 on Windows", "curl 8.4.0", "Unknown device": for people.
    pub fn describe(&self) -> String {
        let browser = match (self.browser.as_str(), self.version.as_str()) {
            ("", _) => String::new(),
            (name, "") => name.to_string(),
            (name, version) => {
                // The major version is enough to tell browsers apart.
                let shown = if self.device_type == DeviceType::Api {
                    version
                } else {
                    version.split('.').next().unwrap_or(version)
                };
                format!("{name} {shown}")
            }
        };
        match (browser.is_empty(), self.platform.is_empty()) {
            (true, true) => "Unknown device".to_string(),
            (true, false) => self.platform.clone(),
            (false, true) => browser,
            (false, false) => format!("{browser} on {}", self.platform),
        }
    }
}

static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

/// Parses a `User-Agent` header. `api_client`: the session belongs to a program that
/// signed in through the API, which makes it `api` whatever its header says.
pub fn parse(user_agent: &str, api_client: bool) -> DeviceInfo {
    let parsed = PARSER.parse(user_agent);
    let known = |value: &str| {
        if value == woothee::woothee::VALUE_UNKNOWN {
            String::new()
        } else {
            value.to_string()
        }
    };
    let (category, os, name, version) = match &parsed {
        Some(r) => (r.category, r.os, r.name, r.version),
        None => ("", "", "", ""),
    };
    let device_type = match category {
        _ if api_client => DeviceType::Api,
        "pc" | "appliance" => DeviceType::Desktop,
        // Android tablets leave `Mobile` out of the header (Android's own guidance);
        // iPads name themselves.
        "smartphone" | "mobilephone" if os == "iPad" => DeviceType::Tablet,
        "smartphone" if os == "Android" && !has_token(user_agent, "Mobile") => DeviceType::Tablet,
        "smartphone" | "mobilephone" => DeviceType::Mobile,
        // HTTP libraries, crawlers and whatever woothee does not know as a browser.
        _ => DeviceType::Api,
    };
    let platform = match os {
        o if o.starts_with("Windows Phone") => "Windows Phone".to_string(),
        o if o.starts_with("Windows") => "Windows".to_string(),
        "Mac OSX" | "Mac OS Classic" => "macOS".to_string(),
        "iPhone" | "iPod" | "iOS" => "iOS".to_string(),
        "iPad" => "iPadOS".to_string(),
        other => known(other),
    };
    let is_browser = matches!(category, "pc" | "smartphone" | "mobilephone" | "appliance");
    let (browser, version) = if is_browser {
        (known(name), known(version))
    } else {
        // A program: its product token (RFC 9110 §10.1.5), `curl/8.4.0` → curl 8.4.0.
        product(user_agent)
    };
    DeviceInfo {
        device_type,
        platform: truncate(&platform, 64),
        browser: truncate(&browser, 64),
        version: truncate(&version, 32),
    }
}

/// Whether the header's comments or products contain `token` as a whole word.
fn has_token(user_agent: &str, token: &str) -> bool {
    user_agent
        .split([' ', ';', '(', ')', '/'])
        .any(|word| word == token)
}

/// The first product of a `User-Agent` header: its name and version.
fn product(user_agent: &str) -> (String, String) {
    let first = user_agent.split_whitespace().next().unwrap_or_default();
    let (name, version) = first.split_once('/').unwrap_or((first, ""));
    (name.to_string(), version.to_string())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
