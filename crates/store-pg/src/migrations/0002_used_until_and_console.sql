-- pam_totp schema, version 2 (issue #14):
-- 1. Replay protection as a Unix time, `used_until` (the end of the newest accepted
--    step), instead of `last_step`, a step number in units of the record's period: a
--    re-enrollment with another period made every code look like a replay.
-- 2. Separate failure counters for a lockout_exempt account at the local console, so
--    that exempt accounts are locked out like everyone else everywhere but there.

ALTER TABLE pam_totp.login_state
    ADD COLUMN used_until bigint NOT NULL DEFAULT 0,
    ADD COLUMN console_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN console_locked_until bigint NOT NULL DEFAULT 0;

-- last_step in the record's period (its `period = N` line, 30 if none: the default),
-- clamped like state.rs LoginState::replay_floor, with the widest window a config may
-- set (10): no step a host's window can reach now is let through that last_step
-- refused, and a value damaged by the old bug costs at most that reach.
UPDATE pam_totp.login_state AS s
SET used_until = least(
        (s.last_step::numeric + 1) * p.period,
        floor(extract(epoch FROM now()))::numeric + 11 * p.period,
        9223372036854775807::numeric)::bigint
FROM (
    SELECT r.user_name,
           coalesce(substring(r.record FROM '(?n)^period *= *([0-9]{1,3}) *$')::integer, 30) AS period
    FROM pam_totp.records r
) AS p
WHERE p.user_name = s.user_name AND s.last_step > 0;

ALTER TABLE pam_totp.login_state DROP COLUMN last_step;

-- The host functions change their results and arguments: dropped and made again.
DROP FUNCTION pam_totp.login_read(text);
DROP FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean);
DROP FUNCTION pam_totp.login_accept_step(text, bigint, bigint);
DROP FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint);

-- Before the prompt: one user's record and state (zeros when no state row yet).
CREATE FUNCTION pam_totp.login_read(p_user text)
RETURNS TABLE (record text, used_until bigint, failures integer, locked_until bigint,
               console_failures integer, console_locked_until bigint,
               last_success bigint, recovery_epoch bigint, recovery_used bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT r.record, coalesce(s.used_until, 0), coalesce(s.failures, 0),
           coalesce(s.locked_until, 0), coalesce(s.console_failures, 0),
           coalesce(s.console_locked_until, 0), coalesce(s.last_success, 0),
           coalesce(s.recovery_epoch, 0), coalesce(s.recovery_used, 0)
    FROM pam_totp.records r
    LEFT JOIN pam_totp.login_state s ON s.user_name = r.user_name
    WHERE r.user_name = p_user
$$;

-- The lock-out after a failure that makes the count p_failures (authenticate.rs
-- record_failure): from the max_failures-th failure on, lockout_seconds doubled per
-- further failure, capped at lockout_max_seconds; before that, p_until unchanged.
CREATE FUNCTION pam_totp.lockout_after(p_failures integer, p_until bigint, p_now bigint,
                                       p_max_failures integer, p_lockout_seconds bigint,
                                       p_lockout_max_seconds bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_failures < p_max_failures THEN p_until
                ELSE least(p_now::numeric + least(
                         p_lockout_seconds::numeric
                             * 2::numeric ^ least(p_failures - p_max_failures, 32),
                         p_lockout_max_seconds::numeric),
                     9223372036854775807::numeric)::bigint
           END
$$;

-- At the verdict, before any verification: charge the attempt as a failure, with the
-- lock-out it would start, on the console counters when p_console (a lockout_exempt
-- account at the host's local console), else on the shared ones. One UPDATE computed
-- from the row itself, so concurrent attempts on any hosts cannot lose counts, and at
-- most max_failures guesses per channel are ever in flight. A user locked out on that
-- channel is not charged (charged = false) and the answer is not verified. A success
-- undoes the charge (login_accept_step, login_burn_recovery). No row: no record.
CREATE FUNCTION pam_totp.login_charge(p_user text, p_now bigint, p_max_failures integer,
                                      p_lockout_seconds bigint, p_lockout_max_seconds bigint,
                                      p_console boolean)
RETURNS TABLE (charged boolean, used_until bigint, failures integer, locked_until bigint,
               console_failures integer, console_locked_until bigint,
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
    SET failures = CASE WHEN p_console THEN s.failures
                        ELSE least(s.failures, 2147483646) + 1 END,
        locked_until = CASE WHEN p_console THEN s.locked_until
                            ELSE pam_totp.lockout_after(least(s.failures, 2147483646) + 1,
                                     s.locked_until, p_now, p_max_failures,
                                     p_lockout_seconds, p_lockout_max_seconds) END,
        console_failures = CASE WHEN p_console THEN least(s.console_failures, 2147483646) + 1
                                ELSE s.console_failures END,
        console_locked_until = CASE WHEN p_console
                                    THEN pam_totp.lockout_after(
                                             least(s.console_failures, 2147483646) + 1,
                                             s.console_locked_until, p_now, p_max_failures,
                                             p_lockout_seconds, p_lockout_max_seconds)
                                    ELSE s.console_locked_until END
    WHERE s.user_name = p_user
      AND CASE WHEN p_console THEN s.console_locked_until ELSE s.locked_until END <= p_now
    RETURNING true, s.used_until, s.failures, s.locked_until, s.console_failures,
              s.console_locked_until, s.last_success, s.recovery_epoch, s.recovery_used;
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT false, s.used_until, s.failures, s.locked_until, s.console_failures,
               s.console_locked_until, s.last_success, s.recovery_epoch, s.recovery_used
        FROM pam_totp.login_state AS s WHERE s.user_name = p_user;
    END IF;
END
$$;

-- A verified TOTP step, from Unix time p_starts to p_ends: accepted only if it starts
-- at or after used_until, which it then moves to p_ends, clearing the channel's
-- counters. One row changed = accepted; none = another login (on any host) used this
-- step or a later one first.
CREATE FUNCTION pam_totp.login_accept_step(p_user text, p_starts bigint, p_ends bigint,
                                           p_now bigint, p_console boolean)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    WITH accepted AS (
        UPDATE pam_totp.login_state AS s
        SET used_until = p_ends, last_success = p_now,
            failures = CASE WHEN p_console THEN s.failures ELSE 0 END,
            locked_until = CASE WHEN p_console THEN s.locked_until ELSE 0 END,
            console_failures = CASE WHEN p_console THEN 0 ELSE s.console_failures END,
            console_locked_until = CASE WHEN p_console THEN 0 ELSE s.console_locked_until END
        WHERE s.user_name = p_user AND s.used_until <= p_starts AND p_starts < p_ends
        RETURNING 1
    )
    SELECT count(*) = 1 FROM accepted
$$;

-- A verified recovery (or scratch) code of set p_epoch: burns bit p_bit, refused if it is
-- burnt already (see version 1), clearing the channel's counters.
CREATE FUNCTION pam_totp.login_burn_recovery(p_user text, p_epoch bigint, p_valid bigint,
                                             p_bit bigint, p_now bigint, p_console boolean)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    WITH burnt AS (
        UPDATE pam_totp.login_state AS s
        SET recovery_used = (CASE WHEN s.recovery_epoch = p_epoch THEN s.recovery_used
                                  ELSE 0 END & p_valid) | p_bit,
            recovery_epoch = p_epoch, last_success = p_now,
            failures = CASE WHEN p_console THEN s.failures ELSE 0 END,
            locked_until = CASE WHEN p_console THEN s.locked_until ELSE 0 END,
            console_failures = CASE WHEN p_console THEN 0 ELSE s.console_failures END,
            console_locked_until = CASE WHEN p_console THEN 0 ELSE s.console_locked_until END
        WHERE s.user_name = p_user
          AND (s.recovery_epoch <> p_epoch OR s.recovery_used & p_bit = 0)
        RETURNING 1
    )
    SELECT count(*) = 1 FROM burnt
$$;

REVOKE ALL ON FUNCTION pam_totp.lockout_after(integer, bigint, bigint, integer, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_read(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_accept_step(text, bigint, bigint, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.login_read(text) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_accept_step(text, bigint, bigint, bigint, boolean) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint, boolean) TO pam_totp_host;
