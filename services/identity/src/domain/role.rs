//! What a user may do, as carried in the `roles` claim.

/// A role. Every user is a customer; a few are also admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// May shop: the role of every account.
    Customer,
    /// May use `/admin/*` and the admin API routes.
    Admin,
}

impl Role {
    /// The stable name, used in tokens and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    /// The role of a stable name.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The roles as stored: names joined by commas, e.g. `customer,admin`.
    pub fn join(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The roles of a stored list; unknown names (written by a newer version) are skipped
    /// rather than granted.
    pub fn split(stored: &str) -> Vec<Role> {
        stored
            .split(',')
            .filter_map(|name| Role::from_name(name.trim()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        for roles in [
            vec![],
            vec![Role::Customer],
            vec![Role::Customer, Role::Admin],
        ] {
            assert_eq!(Role::split(&Role::join(&roles)), roles);
        }
        assert_eq!(Role::join(&[Role::Customer, Role::Admin]), "customer,admin");
    }

    #[test]
    fn unknown_stored_roles_are_skipped() {
        assert_eq!(
            Role::split("customer,superuser, admin"),
            vec![Role::Customer, Role::Admin]
        );
    }
}
