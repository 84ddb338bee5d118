//! Authorization: permissions (`resource:action`), roles (named sets of them), the
//! decision rule, and each replica's in-memory view of who holds which role.
//!
//! Tokens carry the roles their subject held when issued. A subject whose roles
//! change (or who is disabled) is remembered here with the time of the change, so
//! that tokens issued before it use the subject's current roles instead, without
//! a database round trip on validation. A deleted role is remembered likewise,
//! by name: tokens issued before the deletion that name it hold nothing by that
//! name, even once a role of the name is made again. Every replica polls the
//! database for both, so a role taken away stops working everywhere within the
//! poll interval.

use crate::access::RoleSql;
use crate::access::feed::ChangeCursor;
use crate::access::{Permission, RoleDeletion, RoleName, SubjectChange, SubjectId};
use crate::storage::StoreError;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use parking_lot::RwLock;
use platform::db::Database;
use platform::ids::{SessionId, UserId};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// What a user may always do to their own profile (`users/{their id}`).
const SELF_SERVICE: [&str; 2] = ["users:read", "users:write"];

/// Who is asking, with their current roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject_id: SubjectId,
    pub session_id: SessionId,
    pub roles: Vec<RoleName>,
    pub permissions: Vec<Permission>,
    pub expires_at: i64,
    pub issued_at: i64,
    pub token_id: Uuid,
    /// What the token says about the user's email address.
    pub email_verified: bool,
    /// How the session was authenticated (`amr`).
    pub amr: Vec<String>,
}

impl Principal {
    /// The caller's user id, unless the caller is a service account.
    pub fn user_id(&self) -> Option<UserId> {
        self.subject_id.user()
    }
}

/// Every role's permissions.
pub type Definitions = HashMap<RoleName, Vec<Permission>>;

/// A decision and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// The permissions `roles` grant, sorted.
pub fn permissions_of(roles: &[RoleName], definitions: &Definitions) -> Vec<Permission> {
    let set: BTreeSet<&Permission> = roles
        .iter()
        .filter_map(|r| definitions.get(r))
        .flatten()
        .collect();
    set.into_iter().cloned().collect()
}

/// May `p` do `permission` (on `resource`)? Granted by a role holding it (or
/// `*`), or by owning the resource for self-service permissions.
pub fn decide(p: &Principal, permission: &str, resource: Option<&str>) -> Decision {
    if p.permissions.iter().any(|g| g.grants(permission)) {
        return Decision {
            allowed: true,
            reason: format!("granted by the caller's roles ({})", p.roles.join(", ")),
        };
    }
    let own = format!("users/{}", p.subject_id);
    if p.subject_id.user().is_some()
        && SELF_SERVICE.contains(&permission)
        && resource == Some(own.as_str())
    {
        return Decision {
            allowed: true,
            reason: "the caller owns the resource".into(),
        };
    }
    Decision {
        allowed: false,
        reason: format!("missing permission {permission}"),
    }
}

/// `roles` less those deleted since they were read (`since` of the deletion).
fn without_deleted(
    roles: &[RoleName],
    deleted: &HashMap<RoleName, DateTime<Utc>>,
    since: impl Fn(DateTime<Utc>) -> bool,
) -> Vec<RoleName> {
    let gone = |r: &RoleName| deleted.get(r).is_some_and(|at| since(*at));
    roles.iter().filter(|r| !gone(r)).cloned().collect()
}

/// This replica's view of role definitions and recent subject changes.
#[derive(Debug)]
pub struct AuthzState {
    definitions: RwLock<Arc<Definitions>>,
    changed: RwLock<HashMap<SubjectId, SubjectChange>>,
    /// Roles deleted recently, with when.
    deleted: RwLock<HashMap<RoleName, DateTime<Utc>>>,
    /// Where this replica is in the stream of subject changes; a change matters
    /// for the longest token lifetime plus leeway.
    cursor: ChangeCursor,
}

impl AuthzState {
    /// Empty; call [`AuthzState::poll`] before use.
    pub fn new(horizon: Duration) -> Self {
        Self {
            definitions: RwLock::default(),
            changed: RwLock::default(),
            deleted: RwLock::default(),
            cursor: ChangeCursor::new(horizon),
        }
    }

    /// Every role's permissions.
    pub fn definitions(&self) -> Arc<Definitions> {
        self.definitions.read().clone()
    }

    /// The roles to use for a token of `subject` issued at `iat` (seconds) that
    /// carries `token_roles`; `None` when the subject was disabled since.
    /// Either list leaves out roles deleted since it was taken.
    pub fn current_roles(
        &self,
        subject: &SubjectId,
        iat: i64,
        token_roles: &[RoleName],
    ) -> Option<Vec<RoleName>> {
        let deleted = self.deleted.read();
        let changed = self.changed.read();
        match changed.get(subject) {
            Some(c) if c.changed_at.timestamp() >= iat => {
                (!c.disabled).then(|| without_deleted(&c.roles, &deleted, |at| at >= c.changed_at))
            }
            _ => Some(without_deleted(token_roles, &deleted, |at| {
                at.timestamp() >= iat
            })),
        }
    }

    /// Records a change made by this replica, effective at once. Its time as
    /// the database keeps it (microseconds), so the poll's copy of the same
    /// change, or a later one, replaces it.
    pub fn note(&self, mut change: SubjectChange) {
        change.changed_at = change.changed_at.trunc_subsecs(6);
        self.changed.write().insert(change.subject_id, change);
    }

    /// Records a role deleted by this replica, effective at once.
    pub fn note_deleted(&self, deletion: RoleDeletion) {
        let mut deleted = self.deleted.write();
        let at = deleted.entry(deletion.role).or_insert(deletion.deleted_at);
        *at = (*at).max(deletion.deleted_at);
    }

    /// Replaces the role definitions (after a role changed here).
    pub fn set_definitions(&self, roles: Definitions) {
        *self.definitions.write() = Arc::new(roles);
    }

    /// Reloads role definitions and the subject changes since the last poll.
    pub async fn poll(&self, db: &Database, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut c = db.read().await?;
        let roles = platform::sql!(&mut c, RoleSql::list_roles())?;
        self.set_definitions(roles.into_iter().map(|r| (r.name, r.permissions)).collect());
        let since = self.cursor.since(now);
        let changes = platform::sql!(&mut c, RoleSql::subject_changes_since(since))?;
        let deletions = platform::sql!(&mut c, RoleSql::role_deletions_since(since))?;
        drop(c);
        let newest = changes.iter().map(|c| c.changed_at);
        let newest = newest.chain(deletions.iter().map(|d| d.deleted_at)).max();
        let oldest = self.cursor.oldest_relevant(now);
        {
            let mut map = self.changed.write();
            for c in changes {
                let keep = map
                    .get(&c.subject_id)
                    .is_none_or(|old| old.changed_at <= c.changed_at);
                if keep {
                    map.insert(c.subject_id, c);
                }
            }
            map.retain(|_, c| c.changed_at >= oldest);
        }
        for deletion in deletions {
            self.note_deleted(deletion);
        }
        self.deleted.write().retain(|_, at| *at >= oldest);
        self.cursor.advance(since, newest, now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use platform::ids::ServiceAccountId;

    fn principal(subject_id: SubjectId, permissions: &[&str]) -> Principal {
        Principal {
            subject_id,
            session_id: SessionId::generate(),
            roles: vec![RoleName::builtin("reader")],
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p, "p").unwrap())
                .collect(),
            expires_at: 0,
            issued_at: 0,
            token_id: Uuid::now_v7(),
            email_verified: false,
            amr: vec![],
        }
    }

    #[test]
    fn roles_grant_and_owners_self_serve() {
        let user = principal(UserId::generate().into(), &["users:read"]);
        assert!(decide(&user, "users:read", None).allowed);
        assert!(!decide(&user, "users:write", None).allowed);
        let own = format!("users/{}", user.subject_id);
        assert!(decide(&user, "users:write", Some(&own)).allowed);
        assert!(
            !decide(&user, "roles:admin", Some(&own)).allowed,
            "ownership grants only self-service"
        );
        assert!(!decide(&user, "users:write", Some("users/someone-else")).allowed);
        let admin = principal(UserId::generate().into(), &["*"]);
        assert!(decide(&admin, "audit:read", None).allowed);
        let service = principal(ServiceAccountId::generate().into(), &[]);
        let own = format!("users/{}", service.subject_id);
        assert!(!decide(&service, "users:write", Some(&own)).allowed);
    }

    #[test]
    fn changes_override_older_tokens_only() {
        let state = AuthzState::new(Duration::minutes(16));
        let id = UserId::generate().into();
        let now = Utc::now();
        let token = vec![RoleName::builtin("admin")];
        assert_eq!(
            state.current_roles(&id, now.timestamp(), &token),
            Some(token.clone())
        );
        state.note(SubjectChange {
            subject_id: id,
            changed_at: now,
            roles: vec![RoleName::builtin("user")],
            disabled: false,
        });
        assert_eq!(
            state.current_roles(&id, now.timestamp() - 60, &token),
            Some(vec![RoleName::builtin("user")])
        );
        assert_eq!(
            state.current_roles(&id, now.timestamp() + 1, &token),
            Some(token),
            "newer tokens are current"
        );
        state.note(SubjectChange {
            subject_id: id,
            changed_at: now,
            roles: vec![],
            disabled: true,
        });
        assert_eq!(state.current_roles(&id, now.timestamp() - 60, &[]), None);
    }

    #[test]
    fn a_deleted_role_is_gone_from_tokens_and_changes_taken_before() {
        let state = AuthzState::new(Duration::minutes(16));
        let (id, other) = (UserId::generate().into(), UserId::generate().into());
        let now = Utc::now();
        let (temp, user) = (RoleName::builtin("temp"), RoleName::builtin("user"));
        let token = vec![temp.clone(), user.clone()];
        state.note(SubjectChange {
            subject_id: id,
            changed_at: now - Duration::seconds(30),
            roles: token.clone(),
            disabled: false,
        });
        state.note_deleted(RoleDeletion {
            role: temp.clone(),
            deleted_at: now,
        });
        let before = now.timestamp() - 60;
        assert_eq!(
            state.current_roles(&other, before, &token),
            Some(vec![user.clone()])
        );
        assert_eq!(
            state.current_roles(&other, now.timestamp(), &token),
            Some(vec![user.clone()]),
            "a token of the deletion's second may predate it"
        );
        assert_eq!(
            state.current_roles(&id, before, &token),
            Some(vec![user.clone()]),
            "roles read before the deletion lose it too"
        );
        assert_eq!(
            state.current_roles(&other, now.timestamp() + 1, &token),
            Some(token.clone()),
            "a later token names the role made again"
        );
        // An older deletion noted late does not move it back.
        state.note_deleted(RoleDeletion {
            role: temp,
            deleted_at: now - Duration::minutes(5),
        });
        assert_eq!(
            state.current_roles(&other, now.timestamp(), &token),
            Some(vec![user])
        );
    }
}
