//! The tables and columns a migrated database holds, to check that a service's
//! PostgreSQL and SQLite migrations describe the same schema.

use std::collections::BTreeSet;

/// `(table, column)` of every table but sqlx's own bookkeeping.
pub async fn columns(url: &str) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
        sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'
               AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .fetch_all(&pool)
        .await
        .expect("SQLite schema")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open PostgreSQL");
        sqlx::query_as(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
        )
        .fetch_all(&pool)
        .await
        .expect("PostgreSQL schema")
    };
    rows.into_iter().collect()
}
