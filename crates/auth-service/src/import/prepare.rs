//! One line checked as a registration checks its request, before any batch
//! touches the database: what is wrong with a line is known from the line alone.

use super::{ImportLine, Ready};
use crate::context::DEFAULT_ROLE;
use crate::credentials::NewIdentity;
use crate::crypto::{hasher::NO_PASSWORD, imported};
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::validation::{DisplayName, Email, Username};

const MAX_EXTERNAL_ID: usize = 255;
const MAX_ROLES: usize = 100;

/// Parses and checks one line; `now` is its creation time unless it says.
pub(super) fn prepare(text: &str, now: DateTime<Utc>) -> Result<Ready, String> {
    let line: ImportLine =
        serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let email = Email::parse(&line.email, "email").map_err(|e| e.to_string())?;
    let password_hash = match line.password_hash {
        Some(hash) => {
            imported::check(&hash).map_err(|why| format!("password_hash: {why}"))?;
            hash
        }
        None => NO_PASSWORD.to_owned(),
    };
    let display_name = match &line.display_name {
        Some(name) => DisplayName::parse(name, "display_name").map_err(|e| e.to_string())?,
        None => {
            let local = email.as_str().split('@').next().unwrap_or_default();
            DisplayName::parse(local, "display_name")
                .or_else(|_| DisplayName::parse("user", "display_name"))
                .map_err(|e| e.to_string())?
        }
    };
    let username = match &line.username {
        Some(name) => Some(
            Username::parse(name, "username")
                .map_err(|e| e.to_string())?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    if let Some(id) = &line.external_id
        && (id.is_empty() || id.len() > MAX_EXTERNAL_ID || id.chars().any(char::is_control))
    {
        return Err(format!(
            "external_id: must be 1 to {MAX_EXTERNAL_ID} visible characters"
        ));
    }
    let roles = line.roles.unwrap_or_else(|| vec![DEFAULT_ROLE.to_owned()]);
    if roles.len() > MAX_ROLES {
        return Err(format!("roles: at most {MAX_ROLES}"));
    }
    let mut names: Vec<String> = Vec::with_capacity(roles.len());
    for role in &roles {
        let name = crate::access::RoleName::parse(role, "roles").map_err(|e| e.to_string())?;
        // A role named twice is held once (its row would collide with itself).
        if !names.iter().any(|n| n == name.as_str()) {
            names.push(name.as_str().to_owned());
        }
    }
    Ok(Ready {
        identity: NewIdentity {
            id: UserId::generate(),
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash,
            roles: names,
            created_at: line.created_at.unwrap_or(now),
        },
        email_verified: line.email_verified,
        username,
        external_id: line.external_id,
    })
}
