//! The User Service's use cases. Transport-free: handlers authorize the caller
//! (through the Auth Service), parse requests into domain types and call these.
//! The rules live here (which version a write needs, what a deletion tells the
//! Auth Service); the SQL functions they call only read and write rows.

use crate::domain::{Filter, Profile, ProfileInput, UpdateMask, Username};
use crate::error::UserError;
use crate::reads::Reads;
use crate::storage::{ListCursor, Sql, StoreError, UserRecord};
use platform::clock::SharedClock;
use platform::db::Database;
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::paging::{Limits, PageRequest};
use platform::sql;
use platform::sql::Tx;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

/// Default and largest ListUsers page.
const PAGES: Limits = Limits {
    default: 50,
    max: 1000,
};
/// Largest BatchGetUsers request.
pub const MAX_BATCH: usize = 100;
/// Attempts to find a free derived username.
const USERNAME_ATTEMPTS: usize = 8;

/// The event the Auth Service receives when a user is deleted.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserDeleted {
    pub user_id: UserId,
}

/// The outbox topic of [`UserDeleted`].
pub const USER_DELETED: &str = "user.deleted";

/// A new profile, as CreateUser receives it.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    /// Derived from the email when `None`.
    pub username: Option<Username>,
    pub input: ProfileInput,
}

/// One page of users.
#[derive(Debug)]
pub struct Page {
    pub users: Vec<UserRecord>,
    pub next_page_token: String,
}

/// The etag of a stored version (AIP-154).
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

fn version_of(etag: &str) -> Result<Option<i64>, UserError> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            crate::domain::FieldViolation::new("etag", "is not an etag this service issued").into()
        })
}

/// The User Service's core.
#[derive(Debug)]
pub struct Directory {
    pub(crate) db: Database,
    /// GetUser's reads, coalesced under load.
    pub(crate) reads: Reads,
    pub(crate) clock: SharedClock,
    /// Wakes the outbox relay when an event is written.
    pub(crate) outbox_wake: Arc<Notify>,
}

impl Directory {
    /// Creates a profile, or returns the one already created with this id.
    #[tracing::instrument(skip_all, fields(user_id = %new.id))]
    pub async fn create(&self, new: NewUser) -> Result<UserRecord, UserError> {
        let now = self.clock.now();
        let placeholder = Username::derive(&new.email, None);
        let base = Profile {
            username: placeholder.clone(),
            display_name: String::new(),
            avatar_url: String::new(),
            bio: String::new(),
            locale: String::new(),
            time_zone: String::new(),
        };
        let mut input = new.input.clone();
        input.username = placeholder.as_str().to_owned();
        let mut profile = UpdateMask::parse(&["*".to_owned()], &input)?.apply(&base, &input)?;
        let explicit = new.username.is_some();
        if let Some(u) = new.username {
            profile.username = u;
        }
        // One statement per attempt, each committed on its own: no transaction
        // to hold while a username is retried.
        let mut conn = self.db.read().await?;
        for attempt in 0..USERNAME_ATTEMPTS {
            let record = record(new.id, &new.email, &profile, 1, now, now);
            let clash = match platform::sql!(&mut conn, Sql::insert_user(&record)) {
                Ok(Some(stored)) => {
                    tracing::info!(username = %stored.username, "profile created");
                    return Ok(stored);
                }
                // The id exists: a redelivery.
                Ok(None) => StoreError::Database(sqlx::Error::RowNotFound),
                // A redelivery whose username check fired before its id check, or
                // a real clash with another user.
                Err(StoreError::UsernameTaken) => StoreError::UsernameTaken,
                Err(e) => return Err(e.into()),
            };
            if let Some(existing) = platform::sql!(&mut conn, Sql::any_user(new.id))? {
                return Ok(existing);
            }
            match clash {
                StoreError::UsernameTaken if !explicit && attempt + 1 < USERNAME_ATTEMPTS => {
                    let suffix = format!("{:04}", uuid::Uuid::new_v4().as_u128() % 10_000);
                    profile.username = Username::derive(&new.email, Some(&suffix));
                }
                StoreError::UsernameTaken => {
                    return Err(UserError::UsernameTaken(
                        profile.username.as_str().to_owned(),
                    ));
                }
                e => return Err(e.into()),
            }
        }
        Err(UserError::UsernameTaken(
            profile.username.as_str().to_owned(),
        ))
    }

    /// One active user.
    pub async fn get(&self, id: UserId) -> Result<UserRecord, UserError> {
        self.reads
            .get(id)
            .await?
            .ok_or_else(|| UserError::NotFound(format!("users/{id}")))
    }

    /// Several active users in the order asked; NOT_FOUND if any is missing.
    pub async fn batch_get(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, UserError> {
        let mut conn = self.db.read().await?;
        let found = platform::sql!(&mut conn, Sql::get_users(ids))?;
        ids.iter()
            .map(|id| {
                found
                    .iter()
                    .find(|u| u.id == *id)
                    .cloned()
                    .ok_or_else(|| UserError::NotFound(format!("users/{id}")))
            })
            .collect()
    }

    /// A page of active users: in id (creation) order, or for a prefix
    /// filter in the order of the name it matches.
    pub async fn list(
        &self,
        filter_text: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page, UserError> {
        let filter = Filter::parse(filter_text)?;
        let page =
            PageRequest::<ListCursor>::parse(page_size, page_token, filter_text.trim(), PAGES)?;
        let mut conn = self.db.read().await?;
        let rows = platform::sql!(
            &mut conn,
            Sql::list_users(&filter, page.after.as_ref(), page.fetch())
        )?;
        let (rows, next_page_token) = page.finish(rows, |row| ListCursor {
            key: row.sort_key.clone(),
            id: row.user.id,
        });
        Ok(Page {
            users: rows.into_iter().map(|row| row.user).collect(),
            next_page_token,
        })
    }

    /// Applies `mask` from `input` to the user, if `etag` (when given) is current.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update(
        &self,
        id: UserId,
        etag_text: &str,
        mask_paths: &[String],
        input: &ProfileInput,
    ) -> Result<UserRecord, UserError> {
        let expected = version_of(etag_text)?;
        let mask = UpdateMask::parse(mask_paths, input)?;
        self.rewrite(id, expected, |current| {
            let next = mask.apply(&profile_of(current)?, input)?;
            Ok((current.email.clone(), next))
        })
        .await
    }

    /// Sets the email address the Auth Service holds now (after a verified
    /// change). Idempotent: the same address again changes nothing.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn set_email(&self, id: UserId, email: &str) -> Result<UserRecord, UserError> {
        let current = self.get(id).await?;
        if current.email == email {
            return Ok(current);
        }
        self.rewrite(id, None, |current| {
            Ok((email.to_owned(), profile_of(current)?))
        })
        .await
    }

    /// Writes what `change` makes of the current record (its email and
    /// profile), if still at version `expected` when given. Without one, a
    /// concurrent change is re-read and `change` applied again, a few times
    /// (last writer wins).
    async fn rewrite(
        &self,
        id: UserId,
        expected: Option<i64>,
        change: impl Fn(&UserRecord) -> Result<(String, Profile), UserError>,
    ) -> Result<UserRecord, UserError> {
        let attempts = if expected.is_some() { 1 } else { 16 };
        for _ in 0..attempts {
            let current = self.get(id).await?;
            if expected.is_some_and(|v| v != current.version) {
                return Err(UserError::StaleEtag);
            }
            let (email, next) = change(&current)?;
            let candidate = record(
                id,
                &email,
                &next,
                current.version,
                current.created_at,
                self.clock.now(),
            );
            let mut tx = Tx::write(&self.db.pool).await?;
            match sql!(&mut tx, Sql::update_user(&candidate)) {
                Ok(Some(u)) => {
                    tx.commit().await?;
                    return Ok(u);
                }
                Ok(None) if sql!(&mut tx, Sql::exists(id))? => continue,
                Ok(None) => return Err(UserError::NotFound(format!("users/{id}"))),
                Err(StoreError::UsernameTaken) => {
                    return Err(UserError::UsernameTaken(next.username.as_str().to_owned()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(UserError::StaleEtag)
    }

    /// Soft-deletes the user and tells the Auth Service (through the outbox).
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(&self, id: UserId, etag_text: &str) -> Result<(), UserError> {
        let expected = version_of(etag_text)?;
        let now = self.clock.now();
        let payload = serde_json::to_string(&UserDeleted { user_id: id }).unwrap_or_default();
        let event = OutboxEvent::new(USER_DELETED, id.uuid(), payload, now);
        let mut tx = Tx::write(&self.db.pool).await?;
        if !sql!(&mut tx, Sql::soft_delete(id, expected, now))? {
            return Err(if sql!(&mut tx, Sql::exists(id))? {
                UserError::StaleEtag
            } else {
                UserError::NotFound(format!("users/{id}"))
            });
        }
        // The Auth Service hears of the deletion if and only if it commits.
        sql!(&mut tx, SqlOutbox::insert(&event))?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        tracing::info!("user deleted");
        Ok(())
    }
}

fn record(
    id: UserId,
    email: &str,
    p: &Profile,
    version: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> UserRecord {
    UserRecord {
        id,
        email: email.to_owned(),
        username: p.username.as_str().to_owned(),
        display_name: p.display_name.clone(),
        avatar_url: p.avatar_url.clone(),
        bio: p.bio.clone(),
        locale: p.locale.clone(),
        time_zone: p.time_zone.clone(),
        version,
        created_at,
        updated_at,
    }
}

/// The editable part of a stored user (stored values were valid when written).
fn profile_of(u: &UserRecord) -> Result<Profile, UserError> {
    Ok(Profile {
        username: Username::parse(&u.username, "user.username")?,
        display_name: u.display_name.clone(),
        avatar_url: u.avatar_url.clone(),
        bio: u.bio.clone(),
        locale: u.locale.clone(),
        time_zone: u.time_zone.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::clock::ManualClock;
    use test_support::{Backend, TestDatabase};

    test_support::both_backends!(
        a_deletion_tells_the_auth_service_only_when_it_happens,
        a_redelivered_creation_returns_the_stored_profile
    );

    async fn directory(backend: Backend) -> (TestDatabase, Directory) {
        let test_db = backend.fresh_database().await;
        let db = Database::connect(&test_db.url, &crate::storage::MIGRATIONS)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let directory = Directory {
            reads: Reads::spawn(db.clone()),
            db,
            clock: Arc::new(ManualClock::default()),
            outbox_wake: Arc::new(Notify::new()),
        };
        (test_db, directory)
    }

    fn new_user(email: &str) -> NewUser {
        NewUser {
            id: UserId::generate(),
            email: email.into(),
            username: None,
            input: ProfileInput {
                display_name: "Ada".into(),
                ..ProfileInput::default()
            },
        }
    }

    async fn a_deletion_tells_the_auth_service_only_when_it_happens(backend: Backend) {
        let (_keep, users) = directory(backend).await;
        let ada = users.create(new_user("ada@example.com")).await.unwrap();
        let stale = users.delete(ada.id, "v9").await;
        assert!(matches!(stale, Err(UserError::StaleEtag)), "{stale:?}");
        let missing = users.delete(UserId::generate(), "").await;
        assert!(
            matches!(missing, Err(UserError::NotFound(_))),
            "{missing:?}"
        );
        assert_eq!(
            platform::sql!(read(&users.db), SqlOutbox::backlog()).unwrap(),
            0,
            "no event without a deletion"
        );
        users.delete(ada.id, "v1").await.unwrap();
        assert_eq!(
            platform::sql!(read(&users.db), SqlOutbox::backlog()).unwrap(),
            1,
            "one event with it"
        );
        let again = users.delete(ada.id, "").await;
        assert!(matches!(again, Err(UserError::NotFound(_))), "{again:?}");
        assert_eq!(
            platform::sql!(read(&users.db), SqlOutbox::backlog()).unwrap(),
            1
        );
    }

    async fn a_redelivered_creation_returns_the_stored_profile(backend: Backend) {
        let (_keep, users) = directory(backend).await;
        let new = new_user("ada@example.com");
        let first = users.create(new.clone()).await.unwrap();
        let again = users.create(new).await.unwrap();
        assert_eq!(again, first);
        // Another user with the same email derives another username.
        let other = users.create(new_user("ada@example.com")).await.unwrap();
        assert_ne!(other.username, first.username);
    }
}
