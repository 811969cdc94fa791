//! WebAuthn passkeys and security keys (webauthn-rs). Filled in by the WebAuthn work.
