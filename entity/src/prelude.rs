pub use crate::admin_tokens::Entity as AdminTokens;
pub use crate::audit_log::Entity as AuditLog;
pub use crate::browser_sessions::Entity as BrowserSessions;
pub use crate::clients::Entity as Clients;
pub use crate::signing_keys::Entity as SigningKeys;
pub use crate::users::Entity as Users;
