//! Identity over real HTTP: each test starts the service with `build()` on a free port and a
//! throw-away database, once on SQLite and once on PostgreSQL (when
//! `BAZAAR_TEST_POSTGRES_URL` is set), and talks to it with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Defines, for each named `async fn(TestApp)`, a module of the same name with one test per
/// backend: `<name>::on_sqlite` and `<name>::on_postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$name(crate::helpers::TestApp::sqlite().await).await;
                }

                #[tokio::test]
                async fn on_postgres() {
                    if let Some(app) = crate::helpers::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
}

/// Like `on_both_backends!`, for tests that start their own instances: each named
/// `async fn(Location)` gets a fresh database location per backend.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$name(crate::helpers::Location::sqlite()).await;
                }

                #[tokio::test]
                async fn on_postgres() {
                    if let Some(location) = crate::helpers::Location::postgres() {
                        super::$name(location).await;
                    }
                }
            }
        )*
    };
}

mod admin;
mod helpers;
mod keys;
mod me;
mod register;
mod replicas;
mod restart;
mod state;
mod token;
