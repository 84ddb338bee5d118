//! Who may do what to a profile. Until roles exist (the access-control issue), the
//! rule is: any authenticated caller reads active profiles; a user changes only
//! their own; creating profiles is for internal services.

use crate::error::UserError;
use platform::caller::Caller;
use uuid::Uuid;

/// Any authenticated caller may read.
pub fn may_read(_caller: &Caller) -> Result<(), UserError> {
    Ok(())
}

/// Profiles are created by the Auth Service at registration.
pub fn may_create(caller: &Caller) -> Result<(), UserError> {
    match caller {
        Caller::Service => Ok(()),
        Caller::User { .. } => Err(UserError::PermissionDenied(
            "profiles are created at registration; users cannot create them",
        )),
    }
}

/// A user may change or delete only their own profile.
pub fn may_write(caller: &Caller, target: Uuid) -> Result<(), UserError> {
    match caller {
        Caller::User { id, .. } if *id == target => Ok(()),
        _ => Err(UserError::PermissionDenied(
            "you may change only your own profile",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        let me = Uuid::now_v7();
        let user = Caller::User {
            id: me,
            session_id: Uuid::now_v7(),
            roles: vec![],
        };
        assert!(may_read(&user).is_ok() && may_read(&Caller::Service).is_ok());
        assert!(may_create(&Caller::Service).is_ok());
        assert!(may_create(&user).is_err());
        assert!(may_write(&user, me).is_ok());
        assert!(may_write(&user, Uuid::now_v7()).is_err());
        assert!(may_write(&Caller::Service, me).is_err());
    }
}
