//! Statements over many rows at once (multi-row `INSERT ... VALUES`, `IN`
//! lists), kept within the bind-parameter limit both backends share, so that
//! a bulk write is a few statements, not one per row.

/// The most bind parameters one statement may carry on either backend:
/// SQLite's (`SQLITE_MAX_VARIABLE_NUMBER`, 32,766 since 3.32); PostgreSQL's
/// is 65,535.
pub const MAX_PARAMS: usize = 32_766;

/// How many rows of `per_row` parameters fit in one statement beside
/// `shared` parameters bound once for every row.
pub const fn rows_per_statement(per_row: usize, shared: usize) -> usize {
    (MAX_PARAMS - shared) / per_row
}

/// `$first, $first+1, ...`: `count` numbered parameters, for an `IN (...)`
/// list or one row of a `VALUES` list.
pub fn params(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `VALUES` list of `rows` rows of `per_row` parameters each, numbered
/// from `first`: row `i` is `row(first + i * per_row)`, told the number of its
/// first parameter (it may repeat one, or name a shared one such as `$1`).
pub fn values(rows: usize, per_row: usize, first: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|i| row(first + i * per_row))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_after_the_shared_parameters() {
        let list = values(2, 3, 2, |n| format!("({}, $1)", params(n, 3)));
        assert_eq!(list, "($2, $3, $4, $1), ($5, $6, $7, $1)");
        assert_eq!(params(1, 0), "");
        assert_eq!(rows_per_statement(2, 0), 16_383);
        assert!(rows_per_statement(7, 2) * 7 + 2 <= MAX_PARAMS);
    }
}
