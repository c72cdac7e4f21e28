-- pam_totp schema, version 6 (issue #17, item 1): users enroll themselves.
--
-- Three things a host may now write, each decided by the database, never on the host's
-- word alone:
-- - host_enroll: a first enrollment at login, only for a user of the host's realms who
--   has none (never a replacement), confirmed by a current code the database checks
--   with its own clock; the recovery codes are hashed and the secret sealed here.
-- - "new phone": the admin's `totp-enroll reset` deletes the enrollment and leaves a
--   mark (enroll_marks), which host_lookup reports as status `enroll`.
-- - "change your OTP": host_reenroll replaces an enrollment only with a single-use
--   ticket (host_reenroll_ticket) that the database grants to the host role whose
--   host_verify accepted a code (or recovery code) of that user less than
--   REENROLL_SECONDS (120) before, once per acceptance.
-- The same rules as 0003: SECURITY DEFINER, fixed search_path, realms of session_user,
-- the database's clock, EXECUTE granted only to pam_totp_host.

-- Users an admin reset ("new phone"): enrolled again at their next login.
CREATE TABLE pam_totp.enroll_marks (
    user_name text PRIMARY KEY CHECK (length(user_name) BETWEEN 1 AND 256),
    marked_at timestamptz NOT NULL DEFAULT now()
);

-- The last acceptance of each user's answer by host_verify: which host role, when
-- (Unix time), and whether a re-enrollment ticket was already issued for it. Written by
-- a trigger on login_state, so host_verify itself is unchanged.
CREATE TABLE pam_totp.last_acceptance (
    user_name text PRIMARY KEY CHECK (length(user_name) BETWEEN 1 AND 256),
    host_role text NOT NULL,
    accepted_at bigint NOT NULL,
    ticket_issued boolean NOT NULL DEFAULT false
);

-- Re-enrollment tickets: only their SHA-256 is kept; one per user, single use.
CREATE TABLE pam_totp.reenroll_tickets (
    user_name text PRIMARY KEY CHECK (length(user_name) BETWEEN 1 AND 256),
    host_role text NOT NULL,
    ticket_hash bytea NOT NULL,
    expires_at bigint NOT NULL
);

REVOKE ALL ON pam_totp.enroll_marks, pam_totp.last_acceptance, pam_totp.reenroll_tickets FROM PUBLIC;

-- host_verify accepts only by moving last_success forward (0003): record who did.
CREATE FUNCTION pam_totp.note_acceptance()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
BEGIN
    IF NEW.last_success IS DISTINCT FROM OLD.last_success AND NEW.last_success > 0 THEN
        INSERT INTO pam_totp.last_acceptance AS a (user_name, host_role, accepted_at)
        VALUES (NEW.user_name, session_user::text, NEW.last_success)
        ON CONFLICT (user_name) DO UPDATE
        SET host_role = EXCLUDED.host_role, accepted_at = EXCLUDED.accepted_at, ticket_issued = false;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION pam_totp.note_acceptance() FROM PUBLIC;
CREATE TRIGGER login_state_note_acceptance
    AFTER UPDATE OF last_success ON pam_totp.login_state
    FOR EACH ROW EXECUTE FUNCTION pam_totp.note_acceptance();

-- The step (over the database's window) at which p_code is p_secret's current code,
-- or NULL; a malformed code is NULL too.
CREATE FUNCTION pam_totp.confirming_step(p_secret bytea, p_algorithm text, p_digits integer,
                                         p_period integer, p_code text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_window integer := (SELECT p.window_steps FROM pam_totp.policy p);
    v_current bigint := floor(extract(epoch FROM now()))::bigint / p_period;
    v_code text := translate(coalesce(p_code, ''), E' \t\r\n', '');
    v_found bigint;
BEGIN
    IF v_code !~ ('^[0-9]{' || p_digits || '}$') THEN
        RETURN NULL;
    END IF;
    FOR step IN greatest(v_current - v_window, 0) .. v_current + v_window LOOP
        IF pam_totp.hotp(p_secret, step, p_algorithm, p_digits) = v_code THEN
            v_found := step;
        END IF;
    END LOOP;
    RETURN v_found;
END
$$;

-- Whether what a host sends for a new enrollment is acceptable: a secret of 128 to 512
-- bits, known parameters, 1 to 32 recovery codes of 12 base32 characters.
CREATE FUNCTION pam_totp.enrollment_acceptable(p_secret bytea, p_algorithm text, p_digits integer,
                                               p_period integer, p_recovery_codes text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT coalesce(length(p_secret) BETWEEN 16 AND 64
        AND p_algorithm IN ('SHA1', 'SHA256', 'SHA512')
        AND p_digits BETWEEN 6 AND 8
        AND p_period BETWEEN 15 AND 300
        AND cardinality(p_recovery_codes) BETWEEN 1 AND 32
        AND array_position(p_recovery_codes, NULL) IS NULL
        AND array_to_string(p_recovery_codes, ' ') ~ '^[0-9a-hjkmnp-tv-z]{12}( [0-9a-hjkmnp-tv-z]{12})*$',
        false)
$$;

CREATE FUNCTION pam_totp.recovery_hashes_of(p_codes text[])
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT ARRAY(SELECT pam_totp_crypto.crypt(c, pam_totp_crypto.gen_salt('bf', 8))
                 FROM unnest(p_codes) WITH ORDINALITY AS t(c, i) ORDER BY i)
$$;

-- A fresh non-zero epoch for a new set of recovery codes (top bit clear, as recovery.rs).
CREATE FUNCTION pam_totp.new_recovery_epoch()
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT greatest(('x' || encode(pam_totp_crypto.gen_random_bytes(8), 'hex'))::bit(64)::bigint
                    & 9223372036854775807, 1)
$$;

-- Before the prompt, as 0003's, with one more status: `enroll`, a user the admin reset
-- (`totp-enroll reset`) and who is not enrolled again yet.
CREATE OR REPLACE FUNCTION pam_totp.host_lookup(p_user text, p_console boolean)
RETURNS TABLE (status text, locked_until bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_until bigint;
BEGIN
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN QUERY SELECT 'not_allowed'::text, 0::bigint;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pam_totp.enrollments e WHERE e.user_name = p_user) THEN
        RETURN QUERY SELECT CASE WHEN EXISTS (SELECT 1 FROM pam_totp.enroll_marks m
                                              WHERE m.user_name = p_user)
                                 THEN 'enroll' ELSE 'not_enrolled' END::text, 0::bigint;
        RETURN;
    END IF;
    SELECT CASE WHEN pam_totp.console_channel(p_user, p_console) THEN s.console_locked_until
                ELSE s.locked_until END
    INTO v_until
    FROM pam_totp.login_state s WHERE s.user_name = p_user;
    RETURN QUERY SELECT 'enrolled'::text,
                        CASE WHEN coalesce(v_until, 0) > v_now THEN v_until ELSE 0 END;
END
$$;

-- A first enrollment: `enrolled`, `already_enrolled` (nothing changed), `invalid_code`
-- (the confirming code is not the new secret's current code), `malformed` (parameters
-- refused) or `not_allowed` (not a user of the host's realms). Two hosts racing: the
-- primary key lets exactly one insert.
CREATE FUNCTION pam_totp.host_enroll(p_user text, p_secret bytea, p_algorithm text, p_digits integer,
                                     p_period integer, p_confirm_code text, p_recovery_codes text[])
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_step bigint;
    v_until bigint;
BEGIN
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN 'not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM pam_totp.enrollments e WHERE e.user_name = p_user) THEN
        RETURN 'already_enrolled';
    END IF;
    IF NOT pam_totp.enrollment_acceptable(p_secret, p_algorithm, p_digits, p_period, p_recovery_codes) THEN
        RETURN 'malformed';
    END IF;
    v_step := pam_totp.confirming_step(p_secret, p_algorithm, p_digits, p_period, p_confirm_code);
    IF v_step IS NULL THEN
        RETURN 'invalid_code';
    END IF;
    v_until := (v_step + 1) * p_period;
    INSERT INTO pam_totp.enrollments AS e (user_name, secret, algorithm, digits, period, created,
                                           confirmed_until, recovery_epoch, recovery_hashes,
                                           recovery_set_at)
    VALUES (p_user, pam_totp.seal_secret(p_secret), p_algorithm, p_digits, p_period,
            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), v_until,
            pam_totp.new_recovery_epoch(), pam_totp.recovery_hashes_of(p_recovery_codes), now())
    ON CONFLICT (user_name) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'already_enrolled';
    END IF;
    -- The confirming step counts as used (a state left by an older enrollment included).
    INSERT INTO pam_totp.login_state AS s (user_name, used_until) VALUES (p_user, v_until)
    ON CONFLICT (user_name) DO UPDATE SET used_until = greatest(s.used_until, EXCLUDED.used_until);
    DELETE FROM pam_totp.enroll_marks m WHERE m.user_name = p_user;
    DELETE FROM pam_totp.reenroll_tickets t WHERE t.user_name = p_user;
    RETURN 'enrolled';
END
$$;

-- A ticket for host_reenroll, or NULL: granted once per acceptance, to the host role
-- whose host_verify accepted p_user's answer less than 120 s ago, for a request made
-- (p_requested_at, the host's word: it only keeps a request already carried out from
-- being carried out again) after the enrollment it replaces. Valid 300 s.
CREATE FUNCTION pam_totp.host_reenroll_ticket(p_user text, p_requested_at bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_ticket text;
BEGIN
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN NULL;
    END IF;
    UPDATE pam_totp.last_acceptance a SET ticket_issued = true
    WHERE a.user_name = p_user AND a.host_role = session_user::text AND NOT a.ticket_issued
      AND a.accepted_at BETWEEN v_now - 120 AND v_now
      AND EXISTS (SELECT 1 FROM pam_totp.enrollments e WHERE e.user_name = p_user
                  AND p_requested_at IS NOT NULL
                  AND floor(extract(epoch FROM e.updated_at))::bigint <= p_requested_at);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_ticket := encode(pam_totp_crypto.gen_random_bytes(32), 'hex');
    INSERT INTO pam_totp.reenroll_tickets AS t (user_name, host_role, ticket_hash, expires_at)
    VALUES (p_user, session_user::text, pam_totp_crypto.digest(v_ticket, 'sha256'), v_now + 300)
    ON CONFLICT (user_name) DO UPDATE
    SET host_role = EXCLUDED.host_role, ticket_hash = EXCLUDED.ticket_hash, expires_at = EXCLUDED.expires_at;
    RETURN v_ticket;
END
$$;

-- "Change your OTP": replaces p_user's enrollment, given a live ticket of this host role
-- for this user (used up by any call that presents it), confirmed as host_enroll's:
-- `reenrolled`, `no_ticket`, `invalid_code`, `malformed` or `not_allowed`.
CREATE FUNCTION pam_totp.host_reenroll(p_user text, p_ticket text, p_secret bytea, p_algorithm text,
                                       p_digits integer, p_period integer, p_confirm_code text,
                                       p_recovery_codes text[])
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_step bigint;
    v_until bigint;
BEGIN
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN 'not_allowed';
    END IF;
    -- Single use: the ticket goes, whatever follows.
    DELETE FROM pam_totp.reenroll_tickets t
    WHERE t.user_name = p_user AND t.host_role = session_user::text AND t.expires_at >= v_now
      AND p_ticket IS NOT NULL
      AND t.ticket_hash = pam_totp_crypto.digest(p_ticket, 'sha256');
    IF NOT FOUND THEN
        RETURN 'no_ticket';
    END IF;
    IF NOT pam_totp.enrollment_acceptable(p_secret, p_algorithm, p_digits, p_period, p_recovery_codes) THEN
        RETURN 'malformed';
    END IF;
    v_step := pam_totp.confirming_step(p_secret, p_algorithm, p_digits, p_period, p_confirm_code);
    IF v_step IS NULL THEN
        RETURN 'invalid_code';
    END IF;
    v_until := (v_step + 1) * p_period;
    UPDATE pam_totp.enrollments e
    SET secret = pam_totp.seal_secret(p_secret), algorithm = p_algorithm, digits = p_digits,
        period = p_period, created = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        confirmed_until = v_until, recovery_epoch = pam_totp.new_recovery_epoch(),
        recovery_hashes = pam_totp.recovery_hashes_of(p_recovery_codes), scratch_codes = false,
        recovery_set_at = now(), updated_at = now()
    WHERE e.user_name = p_user;
    IF NOT FOUND THEN
        RETURN 'not_allowed';
    END IF;
    UPDATE pam_totp.login_state s SET used_until = greatest(s.used_until, v_until)
    WHERE s.user_name = p_user;
    RETURN 'reenrolled';
END
$$;

REVOKE ALL ON FUNCTION pam_totp.confirming_step(bytea, text, integer, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.enrollment_acceptable(bytea, text, integer, integer, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.recovery_hashes_of(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.new_recovery_epoch() FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_enroll(text, bytea, text, integer, integer, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_reenroll_ticket(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_reenroll(text, text, bytea, text, integer, integer, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.host_enroll(text, bytea, text, integer, integer, text, text[]) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_reenroll_ticket(text, bigint) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_reenroll(text, text, bytea, text, integer, integer, text, text[]) TO pam_totp_host;
