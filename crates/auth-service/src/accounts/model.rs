//! The types of accounts as the use cases and the SQL share them.

use crate::access::RoleName;
use crate::domain::FieldViolation;
use chrono::{DateTime, Utc};
use platform::ids::ServiceAccountId;
use platform::sql::Timestamp;

/// A service account as stored (the secret only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceAccountRecord {
    pub id: ServiceAccountId,
    pub name: String,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    #[sqlx(skip)]
    pub roles: Vec<RoleName>,
}

/// A service account as CreateServiceAccount (or the command line) asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceAccount {
    /// Unique among active accounts; the rule of a [`RoleName`].
    pub name: String,
    /// At most [`NewServiceAccount::MAX_ROLES`].
    pub roles: Vec<RoleName>,
}

impl NewServiceAccount {
    pub const MAX_ROLES: usize = 100;

    /// Parses the `name` and `roles` of a request.
    pub fn parse(name: &str, roles: &[String]) -> Result<Self, FieldViolation> {
        let name = RoleName::parse(name, "name")?.to_string();
        if roles.len() > Self::MAX_ROLES {
            let limit = format!("must name at most {} roles", Self::MAX_ROLES);
            return Err(FieldViolation::new("roles", limit));
        }
        let roles = roles.iter().map(|r| RoleName::parse(r, "roles"));
        Ok(Self {
            name,
            roles: roles.collect::<Result<_, _>>()?,
        })
    }
}
