-- pam_totp schema, version 1.
-- Applied by pam_totp::db::migrate (totp-enroll db init / db migrate) in one transaction
-- under an advisory lock, as the admin role, which then owns every object here.
-- The schema `pam_totp` and `pam_totp.schema_migrations` are created by migrate itself.
--
-- Least privilege: hosts log in as their own roles, members of the NOLOGIN role
-- pam_totp_host, which may read nothing directly. It may only EXECUTE the SECURITY
-- DEFINER functions below, each about ONE named user: a host cannot list users nor
-- dump records, and cannot move a counter backwards.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pam_totp_host') THEN
        CREATE ROLE pam_totp_host NOLOGIN;
    END IF;
END
$$;

-- The same versioned TOML record text as a file record (record.rs); with seal = true it
-- holds sealed_secret, so a dump of this table is useless without a host key.
CREATE TABLE pam_totp.records (
    user_name text PRIMARY KEY CHECK (length(user_name) BETWEEN 1 AND 256),
    record text NOT NULL CHECK (length(record) <= 16384),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- state.rs's LoginState, one row per user. Unix times and steps as bigint;
-- recovery_epoch and recovery_used are u64 bit patterns stored as bigint.
CREATE TABLE pam_totp.login_state (
    user_name text PRIMARY KEY REFERENCES pam_totp.records ON DELETE CASCADE,
    last_step bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    locked_until bigint NOT NULL DEFAULT 0,
    last_success bigint NOT NULL DEFAULT 0,
    recovery_epoch bigint NOT NULL DEFAULT 0,
    recovery_used bigint NOT NULL DEFAULT 0
);

REVOKE ALL ON SCHEMA pam_totp FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pam_totp FROM PUBLIC;
GRANT USAGE ON SCHEMA pam_totp TO pam_totp_host;

-- Before the prompt: one user's record and state (zeros when no state row yet).
CREATE FUNCTION pam_totp.login_read(p_user text)
RETURNS TABLE (record text, last_step bigint, failures integer, locked_until bigint,
               last_success bigint, recovery_epoch bigint, recovery_used bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT r.record, coalesce(s.last_step, 0), coalesce(s.failures, 0),
           coalesce(s.locked_until, 0), coalesce(s.last_success, 0),
           coalesce(s.recovery_epoch, 0), coalesce(s.recovery_used, 0)
    FROM pam_totp.records r
    LEFT JOIN pam_totp.login_state s ON s.user_name = r.user_name
    WHERE r.user_name = p_user
$$;

-- At the verdict, before any verification: charge the attempt as a failure, with the
-- lock-out it would start (the escalation rule of authenticate.rs record_failure:
-- from the max_failures-th failure on, lockout_seconds doubled per further failure,
-- capped at lockout_max_seconds; exempt users are counted, never locked). One UPDATE,
-- computed from the row itself, so concurrent attempts on any hosts cannot lose
-- counts, and at most max_failures guesses are ever in flight. A locked-out user is
-- not charged (charged = false) and the answer is not verified. A success undoes the
-- charge (login_accept_step, login_burn_recovery); a failure needs nothing more.
-- No row: the user has no record.
CREATE FUNCTION pam_totp.login_charge(p_user text, p_now bigint, p_max_failures integer,
                                      p_lockout_seconds bigint, p_lockout_max_seconds bigint,
                                      p_exempt boolean)
RETURNS TABLE (charged boolean, last_step bigint, failures integer, locked_until bigint,
               last_success bigint, recovery_epoch bigint, recovery_used bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO pam_totp.login_state AS s (user_name)
        SELECT r.user_name FROM pam_totp.records r WHERE r.user_name = p_user
        ON CONFLICT DO NOTHING;
    RETURN QUERY
    UPDATE pam_totp.login_state AS s
    SET failures = least(s.failures, 2147483646) + 1,
        locked_until = CASE
            WHEN p_exempt OR least(s.failures, 2147483646) + 1 < p_max_failures THEN s.locked_until
            ELSE least(p_now::numeric + least(
                     p_lockout_seconds::numeric
                         * 2::numeric ^ least(least(s.failures, 2147483646) + 1 - p_max_failures, 32),
                     p_lockout_max_seconds::numeric),
                 9223372036854775807::numeric)::bigint
        END
    WHERE s.user_name = p_user AND (p_exempt OR s.locked_until <= p_now)
    RETURNING true, s.last_step, s.failures, s.locked_until, s.last_success,
              s.recovery_epoch, s.recovery_used;
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT false, s.last_step, s.failures, s.locked_until, s.last_success,
               s.recovery_epoch, s.recovery_used
        FROM pam_totp.login_state AS s WHERE s.user_name = p_user;
    END IF;
END
$$;

-- A verified TOTP step: accepted only if it moves last_step forward. One row changed =
-- accepted; none = another login (on any host) used this step or a later one first.
CREATE FUNCTION pam_totp.login_accept_step(p_user text, p_step bigint, p_now bigint)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    WITH accepted AS (
        UPDATE pam_totp.login_state AS s
        SET last_step = p_step, failures = 0, locked_until = 0, last_success = p_now
        WHERE s.user_name = p_user AND s.last_step < p_step
        RETURNING 1
    )
    SELECT count(*) = 1 FROM accepted
$$;

-- A verified recovery (or scratch) code of set p_epoch: burns bit p_bit, refused if it is
-- burnt already. A state of another epoch knows nothing of this set (recovery.rs
-- used_mask): its bits are dropped. Bits beyond the set's size (p_valid) are dropped too.
CREATE FUNCTION pam_totp.login_burn_recovery(p_user text, p_epoch bigint, p_valid bigint,
                                             p_bit bigint, p_now bigint)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    WITH burnt AS (
        UPDATE pam_totp.login_state AS s
        SET recovery_used = (CASE WHEN s.recovery_epoch = p_epoch THEN s.recovery_used
                                  ELSE 0 END & p_valid) | p_bit,
            recovery_epoch = p_epoch,
            failures = 0, locked_until = 0, last_success = p_now
        WHERE s.user_name = p_user
          AND (s.recovery_epoch <> p_epoch OR s.recovery_used & p_bit = 0)
        RETURNING 1
    )
    SELECT count(*) = 1 FROM burnt
$$;

REVOKE ALL ON FUNCTION pam_totp.login_read(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_accept_step(text, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.login_read(text) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_accept_step(text, bigint, bigint) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint) TO pam_totp_host;
