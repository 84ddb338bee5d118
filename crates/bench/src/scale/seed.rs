//! What the bench writes straight into the Auth Service's database after the
//! import: sessions with their refresh tokens and audit events, shaped like
//! the service's own rows (time-ordered UUIDv7 ids, the same columns), each
//! statement written once over the few fragments where PostgreSQL and SQLite
//! differ.

/// Marks the seeded sessions (their `user_agent`), so their refresh tokens
/// are added to them and to no other.
pub const SEED_AGENT: &str = "identity-bench seed";

const DAY_MICROS: i64 = 86_400_000_000;

/// How one backend spells what the seeding needs.
pub struct Dialect {
    /// `n` rows `g(k)`, `k` from 0.
    numbers: fn(u64) -> String,
    /// A uniform double in [0, 1).
    unit: &'static str,
    /// At least 18 random hex digits.
    hex: &'static str,
    /// A 32-byte random value (a refresh token's hash).
    bytes32: &'static str,
    /// An integer from a numeric expression.
    int: fn(&str) -> String,
    /// A stored time from microseconds since the epoch.
    time: fn(&str) -> String,
    /// A stored time `days` after a stored time.
    plus_days: fn(&str, i64) -> String,
    /// 12 hex digits of an integer (a UUIDv7's milliseconds).
    hex12: fn(&str) -> String,
    /// A stored UUID from 32 hex digits.
    uuid: fn(&str) -> String,
    /// A stored UUID as the service writes it in text (audit actor and subject).
    uuid_text: fn(&str) -> String,
    /// A JSON literal for a JSON column.
    json: fn(&str) -> String,
    /// Refreshes the planner's statistics.
    pub analyze: &'static str,
}

pub const POSTGRES: Dialect = Dialect {
    numbers: |n| format!("generate_series(0, {}) AS g(k)", n.saturating_sub(1)),
    unit: "random()",
    hex: "md5(random()::text)",
    bytes32: "sha256(uuid_send(gen_random_uuid()))",
    int: |e| format!("CAST(({e}) AS bigint)"),
    time: |e| format!("to_timestamp(({e}) / 1000000.0)"),
    plus_days: |t, d| format!("{t} + interval '{d} days'"),
    hex12: |e| format!("lpad(to_hex({e}), 12, '0')"),
    uuid: |e| format!("CAST(({e}) AS uuid)"),
    uuid_text: |e| format!("CAST(({e}) AS text)"),
    json: |j| format!("CAST('{j}' AS jsonb)"),
    analyze: "ANALYZE",
};

pub const SQLITE: Dialect = Dialect {
    numbers: |n| {
        format!(
            "(WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k + 1 < {n}) \
             SELECT k FROM s) AS g"
        )
    },
    unit: "((random() & 9007199254740991) / 9007199254740992.0)",
    hex: "hex(randomblob(9))",
    bytes32: "randomblob(32)",
    int: |e| format!("CAST(({e}) AS INTEGER)"),
    time: |e| format!("({e})"),
    plus_days: |t, d| format!("{t} + {d} * {DAY_MICROS}"),
    hex12: |e| format!("printf('%012x', {e})"),
    uuid: |e| format!("unhex({e})"),
    uuid_text: |e| {
        let h = format!("lower(hex({e}))");
        format!(
            "(substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' || substr({h}, 13, 4) || '-' \
             || substr({h}, 17, 4) || '-' || substr({h}, 21, 12))"
        )
    },
    json: |j| format!("'{j}'"),
    analyze: "ANALYZE",
};

impl Dialect {
    /// A UUIDv7 for the time `micros` (an expression), random bits from `hex`
    /// (a column of [`Dialect::hex`]), as the service's `now_v7` makes them.
    fn uuid7(&self, micros: &str, hex: &str) -> String {
        let digits = (self.hex12)(&(self.int)(&format!("({micros}) / 1000")));
        (self.uuid)(&format!(
            "{digits} || '7' || substr({hex}, 1, 3) || '8' || substr({hex}, 4, 15)"
        ))
    }

    /// `per_user` sessions for every identity (or only for `email`), opened at
    /// most `days` ago and last used between then and now; one in fifty was
    /// logged out when last used. Each gets one live refresh token, expiring
    /// 30 days after its last use, from [`Dialect::refresh_tokens`].
    pub fn sessions(&self, now: i64, per_user: u64, days: i64, email: Option<&str>) -> String {
        let only = email.map_or(String::new(), |e| format!("WHERE i.email = '{e}'"));
        let span = days * DAY_MICROS;
        format!(
            "WITH d AS MATERIALIZED (
                 SELECT i.id AS user_id, g.k AS k, {now} - {opened} AS c, {u} AS w, {u} AS v,
                        {hex} AS h
                 FROM identities i CROSS JOIN {numbers} {only}),
             e AS MATERIALIZED (
                 SELECT user_id, k, c, c + {used} AS l, v, h FROM d)
             INSERT INTO sessions (id, user_id, created_at, last_used_at, revoked_at,
                                   revoke_reason, client_address, user_agent, amr)
             SELECT {id}, user_id, {c}, {l}, CASE WHEN v < 0.02 THEN {l} END,
                    CASE WHEN v < 0.02 THEN 'logout' END,
                    '198.51.100.' || (k * 37 % 250), '{SEED_AGENT}', 'pwd'
             FROM e",
            opened = (self.int)(&format!("{} * {span}", self.unit)),
            u = self.unit,
            hex = self.hex,
            numbers = (self.numbers)(per_user),
            used = (self.int)(&format!("w * ({now} - c)")),
            id = self.uuid7("c", "h"),
            c = (self.time)("c"),
            l = (self.time)("l"),
        )
    }

    /// One refresh token for every seeded session (run once, after the
    /// sessions: a `NOT EXISTS` guard here would be planned on the empty
    /// table's statistics and rescan the table for every row it inserts).
    pub fn refresh_tokens(&self) -> String {
        let expires = (self.plus_days)("s.last_used_at", 30);
        format!(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
             SELECT {bytes}, s.id, s.last_used_at, {expires}
             FROM sessions s
             WHERE s.user_agent = '{SEED_AGENT}'",
            bytes = self.bytes32,
        )
    }

    /// `per_user` audit events for every identity over the last `days` days:
    /// its registration, logins (actor: the user, subject: a session), a
    /// failed login (subject: the address), a logout and a password change.
    pub fn audit_events(&self, now: i64, per_user: u64, days: i64) -> String {
        let span = days * DAY_MICROS;
        let user = (self.uuid_text)("user_id");
        format!(
            "WITH d AS MATERIALIZED (
                 SELECT i.id AS user_id, i.email AS email, g.k AS k, {now} - {ago} AS t,
                        {hex} AS h, {hex} AS h2
                 FROM identities i CROSS JOIN {numbers})
             INSERT INTO audit_events (id, at, kind, actor_id, subject, client_address, details)
             SELECT {id}, {at},
                    CASE k % 10 WHEN 0 THEN 'user.registered' WHEN 7 THEN 'login.failed'
                         WHEN 8 THEN 'session.revoked' WHEN 9 THEN 'password.changed'
                         ELSE 'login.succeeded' END,
                    CASE WHEN k % 10 = 7 THEN NULL ELSE {user} END,
                    CASE WHEN k % 10 IN (0, 9) THEN {user} WHEN k % 10 = 7 THEN email
                         ELSE {session} END,
                    '198.51.100.' || (k * 37 % 250), {details}
             FROM d",
            ago = (self.int)(&format!("{} * {span}", self.unit)),
            hex = self.hex,
            numbers = (self.numbers)(per_user),
            id = self.uuid7("t", "h"),
            at = (self.time)("t"),
            session = (self.uuid_text)(&self.uuid7("t", "h2")),
            details = (self.json)(r#"{"seed":"identity-bench"}"#),
        )
    }
}
